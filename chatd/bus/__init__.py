"""The bus: how several chatd processes share live events (SPEC.md, *Several processes and machines*).

``redis.py`` is the connection to a Redis (``--redis``, or the embedded one):
one subscriber and one command connection, kept open, watched and
re-subscribed; ``embedded.py`` runs a Redis-compatible server (Valkey, from a
wheel) as a supervised child when none is given. ``events.py`` decides what
travels over it (``chatd.chat.sequencer`` puts each room back in seq order);
``presence.py`` and ``leases.py`` keep who is online across processes.
"""
