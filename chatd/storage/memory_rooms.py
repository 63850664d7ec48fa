"""Room heads, memberships and the schema migration of the in-memory store
(a mixin of ``chatd.storage.memory.MemoryStore``; ``chatd.storage.mongo_rooms`` is its Mongo twin).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from chatd.storage.memory_files import answer
from chatd.storage.records import DuplicateKey, Membership, RoomHead
from chatd.storage.schema import SCHEMA_VERSION, earliest


class MemoryRooms:
    """Works on ``self._rooms`` (name → RoomHead), ``self._memberships`` ((room, user id) → Membership)
    and the ``rooms`` of ``self._users``."""

    @answer
    def room_heads(self, rooms):
        return {name: self._rooms[name] for name in rooms if name in self._rooms}

    @answer
    def list_rooms(self):
        return list(self._rooms.values())

    @answer
    def advance_rooms(self, heads):
        for room, (seq, at) in heads.items():
            head = self._rooms.get(room, RoomHead(room))
            latest = at if head.last_message_at is None else max(at, head.last_message_at)
            self._rooms[room] = replace(head, last_seq=max(seq, head.last_seq), last_message_at=latest)

    def _count_member(self, room, change):
        head = self._rooms.get(room, RoomHead(room))
        self._rooms[room] = replace(head, members=head.members + change)

    def _set_rooms(self, user_id, rooms):
        if user_id in self._users:
            self._users[user_id] = replace(self._users[user_id], rooms=tuple(rooms))

    @answer
    def create_room(self, name, visibility, topic, owner_id, created_at):
        head = self._rooms.get(name, RoomHead(name))
        if head.visibility is not None:
            raise DuplicateKey("_id")
        self._rooms[name] = replace(head, visibility=visibility, topic=topic, owner_id=owner_id, created_at=created_at)
        return self._rooms[name]

    @answer
    def update_room(self, name, changes):
        head = self._rooms.get(name)
        if head is None or head.visibility is None:
            return None
        self._rooms[name] = replace(head, **changes)
        return self._rooms[name]

    @answer
    def hand_room(self, name, owner_was, owner_id):
        head = self._rooms.get(name)
        if head is None or head.owner_id != owner_was:
            return False
        self._rooms[name] = replace(head, owner_id=owner_id)
        return True

    @answer
    def migrate(self):
        if self._schema >= SCHEMA_VERSION:
            return self._schema
        for head in list(self._rooms.values()):
            if head.visibility is None:
                first = earliest([m for (room, _), m in self._memberships.items() if room == head.name])
                created_at = first.joined_at if first else (head.last_message_at or datetime.now(timezone.utc))
                self._rooms[head.name] = replace(head, visibility="public", topic="",
                                                 owner_id=first.user_id if first else None, created_at=created_at)
        self._schema = SCHEMA_VERSION
        return self._schema

    @answer
    def set_role(self, room, user_id, role):
        membership = self._memberships.get((room, user_id))
        if membership is None:
            return None
        self._memberships[(room, user_id)] = replace(membership, role=role)
        return self._memberships[(room, user_id)]

    @answer
    def add_membership(self, room, user_id, joined_at, joined_seq, role="member"):
        if (room, user_id) in self._memberships:
            return False
        self._memberships[(room, user_id)] = Membership(room, user_id, joined_at, joined_seq, joined_seq, role)
        self._count_member(room, +1)
        if user_id in self._users:
            self._set_rooms(user_id, [*self._users[user_id].rooms, room])
        return True

    @answer
    def remove_membership(self, room, user_id):
        if self._memberships.pop((room, user_id), None) is None:
            return False
        self._count_member(room, -1)
        if user_id in self._users:
            self._set_rooms(user_id, [r for r in self._users[user_id].rooms if r != room])
        return True

    @answer
    def memberships(self, user_id, rooms):
        return [self._memberships[(room, user_id)] for room in rooms if (room, user_id) in self._memberships]

    @answer
    def room_memberships(self, room, limit):
        found = [m for (name, _), m in self._memberships.items() if name == room]
        return sorted(found, key=lambda m: (-m.read_seq, m.joined_at))[:limit]

    @answer
    def mark_read(self, room, user_id, seq):
        membership = self._memberships.get((room, user_id))
        if membership is not None and seq > membership.read_seq:
            membership = self._memberships[(room, user_id)] = replace(membership, read_seq=seq)
        if membership is not None and membership.mentions and seq >= membership.mention_seq:
            self._memberships[(room, user_id)] = replace(membership, mentions=0)
