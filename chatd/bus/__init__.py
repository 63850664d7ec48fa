"""The bus several chatd processes share (Redis): the connection, the embedded server, and the events on it."""
