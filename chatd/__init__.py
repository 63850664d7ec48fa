"""chatd: a real-time chat server on Twisted, Autobahn, Klein and MongoDB."""
