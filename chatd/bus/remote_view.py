"""Who the other chatd processes hold online: each process's list, as it last said, with the indexes that
answer "is this user online anywhere?" and "who is online in this room?" from memory
(:mod:`chatd.bus.presence` keeps it up to date from the bus)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass


@dataclass
class Remote:
    """A user online on another process, as that process last said."""

    username: str
    rooms: set[str]


class RemoteView:
    """The users the other processes hold: process → user id → :class:`Remote`, with indexes."""

    def __init__(self) -> None:
        self._nodes: dict[str, dict[str, Remote]] = {}
        self._heard: dict[str, float] = {}  # process → when it last said anything
        self._where: dict[str, set[str]] = defaultdict(set)  # user id → processes holding them
        self._room_users: dict[str, Counter] = defaultdict(Counter)  # room → user id → processes

    def nodes(self) -> list[str]:
        return list(self._nodes)

    def heard(self, node: str, when: float) -> None:
        self._nodes.setdefault(node, {})
        self._heard[node] = when

    def heard_at(self, node: str) -> float:
        return self._heard.get(node, 0.0)

    def add(self, node: str, user_id: str, username: str, rooms) -> None:
        self.remove(node, user_id)
        self._nodes.setdefault(node, {})[user_id] = Remote(username, set(rooms))
        self._where[user_id].add(node)
        for room in rooms:
            self._room_users[room][user_id] += 1

    def remove(self, node: str, user_id: str) -> Remote | None:
        remote = self._nodes.get(node, {}).pop(user_id, None)
        if remote is not None:
            self._forget(node, user_id, remote)
        return remote

    def users_of(self, node: str) -> list[str]:
        return list(self._nodes.get(node, ()))

    def drop(self, node: str) -> None:
        for user_id in self.users_of(node):
            self.remove(node, user_id)
        self._nodes.pop(node, None)
        self._heard.pop(node, None)

    def _forget(self, node: str, user_id: str, remote: Remote) -> None:
        holders = self._where[user_id]
        holders.discard(node)
        if not holders:
            del self._where[user_id]
        for room in remote.rooms:
            self._uncount(room, user_id)

    def _uncount(self, room: str, user_id: str) -> None:
        counts = self._room_users[room]
        counts[user_id] -= 1
        if counts[user_id] <= 0:
            del counts[user_id]
        if not counts:
            del self._room_users[room]

    # -- what a user's membership or name became (told by the bus's room and account events) --

    def joined(self, user_id: str, room: str) -> None:
        for node in self._where.get(user_id, ()):
            remote = self._nodes[node][user_id]
            if room not in remote.rooms:
                remote.rooms.add(room)
                self._room_users[room][user_id] += 1

    def left(self, user_id: str, room: str) -> None:
        for node in self._where.get(user_id, ()):
            remote = self._nodes[node][user_id]
            if room in remote.rooms:
                remote.rooms.discard(room)
                self._uncount(room, user_id)

    def renamed(self, user_id: str, username: str) -> None:
        for node in self._where.get(user_id, ()):
            self._nodes[node][user_id].username = username

    # -- questions ---------------------------------------------------------------

    def is_online(self, user_id: str) -> bool:
        return user_id in self._where

    def user(self, user_id: str) -> Remote | None:
        """The user as the processes holding them say: a name and every room any of them lists."""
        holders = self._where.get(user_id)
        if not holders:
            return None
        remotes = [self._nodes[node][user_id] for node in holders]
        return Remote(remotes[0].username, set().union(*(remote.rooms for remote in remotes)))

    def user_ids(self):
        return self._where.keys()

    def room_user_ids(self, room: str):
        return self._room_users.get(room, {}).keys()
