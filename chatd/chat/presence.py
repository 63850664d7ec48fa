"""Who is online, and telling rooms when a user comes online or goes offline (SPEC.md, Details: Membership).

A user's first socket opening sends ``online`` to the rooms they are a member
of, and their last socket closing sends ``offline``. :class:`LocalPresence`
decides that within one process, from the registry; with a bus,
``chatd.bus.presence.ClusterPresence`` decides it across every process, so
that each event fires once per user however many processes serve them.
"""

from __future__ import annotations


class LocalPresence:
    """Presence within this process: the registry knows every socket."""

    def __init__(self, registry, events) -> None:
        self._registry = registry
        self._events = events

    def came_online(self, user_id: str, username: str, rooms) -> None:
        """The user's first socket here opened."""
        for room in rooms:
            self._events.presence(room, user_id, username, "online")

    def went_offline(self, user_id: str, username: str, rooms) -> None:
        """The user's last socket here closed."""
        for room in rooms:
            self._events.presence(room, user_id, username, "offline")

    # -- who is online (the accounts' and the rooms' questions) ---------------

    def is_online(self, user_id: str) -> bool:
        return self._registry.is_online(user_id)

    def online_user_ids(self) -> list[str]:
        return self._registry.online_user_ids()

    def online_members(self, room: str) -> list[str]:
        return self._registry.online_members(room)

    def online_count(self, room: str) -> int:
        return self._registry.online_count(room)
