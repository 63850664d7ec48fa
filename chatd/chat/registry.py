"""Who is connected, and to which rooms: sockets by room, by user and by token.

Pure bookkeeping, knowing nothing of Autobahn or the store. A connection is
any object with ``user_id``, ``username`` and ``jti`` attributes. Two notions
are kept apart, as SPEC.md does: a *member* of a room (persistent, per user)
and a socket that has *joined* it on this connection (receives its frames).
A cross-process bus plugs in beside it: it only needs ``subscribers(room)``
for delivery and the online/offline answers of ``connect``/``disconnect``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field


@dataclass
class OnlineUser:
    username: str
    rooms: set[str]  # rooms this user is a member of
    connections: set = field(default_factory=set)


class Registry:
    """Sockets by room, by user and by token, and which members are online (see the module docstring).

    Also what the accounts ask about presence: ``is_online`` and ``online_user_ids``.
    """

    def __init__(self) -> None:
        self._subscribers: dict[str, set] = defaultdict(set)
        self._joined: dict[object, set[str]] = {}
        self._users: dict[str, OnlineUser] = {}
        self._online_members: dict[str, set[str]] = defaultdict(set)
        self._by_jti: dict[str, set] = defaultdict(set)

    # -- connections -------------------------------------------------------

    def connect(self, conn, member_rooms) -> bool:
        """Add a connection; True if it is its user's first (the user comes online)."""
        self._joined[conn] = set()
        self._by_jti[conn.jti].add(conn)
        user = self._users.get(conn.user_id)
        first = user is None
        if first:
            user = self._users[conn.user_id] = OnlineUser(conn.username, set(member_rooms))
            for room in user.rooms:
                self._online_members[room].add(conn.user_id)
        user.connections.add(conn)
        return first

    def disconnect(self, conn) -> set[str] | None:
        """Remove a connection; the user's member rooms if it was their last, else None."""
        for room in self._joined.pop(conn, ()):
            self._discard(self._subscribers, room, conn)
        self._discard(self._by_jti, conn.jti, conn)
        user = self._users.get(conn.user_id)
        if user is None:
            return None
        user.connections.discard(conn)
        if user.connections:
            return None
        del self._users[conn.user_id]
        for room in user.rooms:
            self._discard(self._online_members, room, conn.user_id)
        return user.rooms

    def rename(self, user_id: str, username: str) -> None:
        """The user now has another name: their sockets (and what they send from now on) say so."""
        user = self._users.get(user_id)
        if user is not None:
            user.username = username
            for conn in user.connections:
                conn.username = username

    def retoken(self, conn, new_jti: str) -> None:
        """The connection now belongs to another token (a ``refresh`` frame)."""
        self._discard(self._by_jti, conn.jti, conn)
        conn.jti = new_jti
        self._by_jti[new_jti].add(conn)

    # -- rooms -------------------------------------------------------------

    def subscribe(self, conn, room: str) -> None:
        """Deliver ``room`` to ``conn``; nothing if the connection has closed meanwhile (a join
        that was waiting for the store)."""
        joined = self._joined.get(conn)
        if joined is None:
            return
        joined.add(room)
        self._subscribers[room].add(conn)

    def unsubscribe(self, conn, room: str) -> None:
        self._joined.get(conn, set()).discard(room)
        self._discard(self._subscribers, room, conn)

    def has_joined(self, conn, room: str) -> bool:
        return room in self._joined.get(conn, ())

    def subscribers(self, room: str):
        """The sockets that joined ``room`` (do not keep: it changes)."""
        return self._subscribers.get(room, ())

    def is_member(self, user_id: str, room: str) -> bool:
        user = self._users.get(user_id)
        return user is not None and room in user.rooms

    def member_room_count(self, user_id: str) -> int:
        """How many rooms an online user is a member of."""
        user = self._users.get(user_id)
        return len(user.rooms) if user is not None else 0

    def became_member(self, user_id: str, room: str) -> None:
        user = self._users.get(user_id)
        if user is not None:
            user.rooms.add(room)
            self._online_members[room].add(user_id)

    def stopped_being_member(self, user_id: str, room: str) -> None:
        user = self._users.get(user_id)
        if user is not None:
            user.rooms.discard(room)
            self._discard(self._online_members, room, user_id)

    def online_members(self, room: str) -> list[str]:
        """Usernames of the room's members who are online now."""
        return sorted(self._users[user_id].username for user_id in self._online_members.get(room, ()))

    def online_count(self, room: str) -> int:
        return len(self._online_members.get(room, ()))

    def online_member_ids(self, room: str):
        """User ids of the room's members who are online here (do not keep: it changes)."""
        return self._online_members.get(room, ())

    # -- users -------------------------------------------------------------

    def is_online(self, user_id: str) -> bool:
        return user_id in self._users

    def online_user_ids(self) -> list[str]:
        return list(self._users)

    def online_user(self, user_id: str) -> OnlineUser | None:
        """The user's name and member rooms, if a socket of theirs is open here (do not change it)."""
        return self._users.get(user_id)

    def connections_of(self, user_id: str) -> list:
        user = self._users.get(user_id)
        return list(user.connections) if user else []

    def connections_with_token(self, jti: str) -> list:
        return list(self._by_jti.get(jti, ()))

    def connections(self) -> list:
        """Every open connection."""
        return list(self._joined)

    def connection_count(self) -> int:
        return len(self._joined)

    def online_user_count(self) -> int:
        return len(self._users)

    def joined_rooms(self) -> list[str]:
        """The rooms at least one open socket here has joined."""
        return list(self._subscribers)

    def active_room_count(self) -> int:
        """Rooms at least one open socket has joined."""
        return len(self._subscribers)

    @staticmethod
    def _discard(index: dict, key, value) -> None:
        members = index.get(key)
        if members is not None:
            members.discard(value)
            if not members:
                del index[key]
