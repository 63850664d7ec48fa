"""An in-memory IStore with the same Deferred-returning behaviour, for unit tests.

``down = True`` makes every call fail with StoreUnavailable, to test outages
without a process to kill.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from datetime import datetime, timezone

from bson import ObjectId
from twisted.application.service import Service
from zope.interface import implementer

from chatd.storage.interface import IStore
from chatd.storage.memory_files import MemoryFiles, answer
from chatd.storage.memory_threads import MemoryThreads
from chatd.storage.words import matches
from chatd.storage.schema import SCHEMA_VERSION, earliest
from chatd.storage.records import (
    DuplicateKey,
    FileRecord,
    InsertStopped,
    LastAdmin,
    Membership,
    Message,
    RoomHead,
    UserRecord,
)


@implementer(IStore)
class MemoryStore(MemoryFiles, MemoryThreads, Service):
    """IStore in memory, answering with fired Deferreds: the unit tests' twin of MongoStore."""

    name = "store"

    def __init__(self) -> None:
        self.ready = True
        self.down = False
        self._users: dict[str, UserRecord] = {}  # insertion order is creation order
        self._revoked: dict[str, object] = {}
        self._registered = itertools.count(1)
        self._messages: dict[tuple[str, int], Message] = {}
        self._client_ids: dict[tuple[str, str, str], Message] = {}
        self._rooms: dict[str, RoomHead] = {}
        self._memberships: dict[tuple[str, str], Membership] = {}
        self._changes: list[tuple[float, str]] = []  # (when, user id): the user change feed
        self._files: dict[str, tuple[FileRecord, bytes]] = {}
        self._schema = 1  # what a new store of version 1 would hold (chatd.storage.schema)

    def _clash(self, user_id: str | None, username: str, email: str) -> None:
        for other in self._users.values():
            if other.id == user_id:
                continue
            if other.username.casefold() == username.casefold():
                raise DuplicateKey("username")
            if other.email.casefold() == email.casefold():
                raise DuplicateKey("email")

    @answer
    def ping(self):
        return None

    @answer
    def create_user(self, username, email, password_hash, created_at):
        self._clash(None, username, email)
        role = "admin" if next(self._registered) == 1 else "user"
        user = UserRecord(str(ObjectId()), username, email, role, created_at, password_hash)
        self._users[user.id] = user
        return user

    @answer
    def get_user(self, user_id):
        return self._users.get(user_id)

    @answer
    def get_users(self, user_ids):
        return [self._users[user_id] for user_id in dict.fromkeys(user_ids) if user_id in self._users]

    @answer
    def find_user_by_login(self, login):
        key = login.casefold()
        field = "email" if "@" in key else "username"
        for user in self._users.values():
            if getattr(user, field).casefold() == key:
                return user
        return None

    @answer
    def list_users(self, limit, after=None, ids=None):
        users = list(self._users.values())
        if after is not None:
            ids_in_order = [user.id for user in users]
            if after not in ids_in_order:
                return []
            users = users[ids_in_order.index(after) + 1 :]
        if ids is not None:
            users = [user for user in users if user.id in set(ids)]
        return users[:limit]

    def _keep_an_admin(self, user: UserRecord, after: UserRecord | None) -> None:
        """LastAdmin if ``user`` is the only active admin and ``after`` (None: deleted) is not one."""
        if _active_admin(user) and not (after is not None and _active_admin(after)):
            if sum(1 for other in self._users.values() if _active_admin(other)) <= 1:
                raise LastAdmin()

    @answer
    def update_user(self, user_id, changes):
        user = self._users.get(user_id)
        if user is None:
            return None
        updated = replace(user, **changes)
        self._clash(user_id, updated.username, updated.email)
        self._keep_an_admin(user, updated)
        self._users[user_id] = updated
        if changes:
            self._changes.append((time.time(), user_id))
        return updated

    @answer
    def users_changed_since(self, since):
        return list(dict.fromkeys(user_id for when, user_id in self._changes if when >= since))

    @answer
    def delete_user(self, user_id):
        user = self._users.get(user_id)
        if user is None:
            return False
        self._keep_an_admin(user, None)
        del self._users[user_id]
        self._changes.append((time.time(), user_id))
        for room in user.rooms:
            self._memberships.pop((room, user_id), None)
            self._count_member(room, -1)
        return True

    @answer
    def rename_author(self, user_id, username):
        for key, message in self._messages.items():
            if message.user_id == user_id:
                message = self._messages[key] = replace(message, user=username)
            if message.reactors and user_id in message.reactors:
                self._messages[key] = replace(message, reactors={**message.reactors, user_id: username})

    @answer
    def revoke_token(self, jti, expires_at):
        self._revoked[jti] = (expires_at.timestamp(), time.time())

    @answer
    def revoked_since(self, since):
        return [(jti, expires) for jti, (expires, revoked_at) in self._revoked.items()
                if (expires > time.time() if since is None else revoked_at >= since)]

    @answer
    def is_token_revoked(self, jti):
        return jti in self._revoked

    @answer
    def insert_messages(self, messages):
        for index, message in enumerate(messages):
            if (message.room, message.seq) in self._messages:
                raise InsertStopped(index, "seq")
            key = (message.room, message.user_id, message.client_id)
            if message.client_id is not None and key in self._client_ids:
                raise InsertStopped(index, "client_id")
            self._messages[(message.room, message.seq)] = message
            if message.client_id is not None:
                self._client_ids[key] = message
            for user_id in message.mention_ids:
                membership = self._memberships.get((message.room, user_id))
                if membership is not None and user_id != message.user_id:
                    self._memberships[(message.room, user_id)] = replace(
                        membership, mentions=membership.mentions + 1,
                        mention_seq=max(membership.mention_seq, message.seq))

    @answer
    def get_messages(self, room, seqs):
        return [self._messages[(room, seq)] for seq in sorted(set(seqs)) if (room, seq) in self._messages]

    @answer
    def find_client_message(self, room, user_id, client_id):
        return self._client_ids.get((room, user_id, client_id))

    @answer
    def update_message(self, room, seq, changes):
        message = self._messages.get((room, seq))
        if message is None or message.deleted:
            return None
        defaults = {"text": None, "client_id": None, "file": None, "edited_at": None, "deleted": False,
                    "reactions": (), "reactors": None}
        updated = replace(message, **{k: (defaults[k] if v is None else v) for k, v in changes.items()})
        self._messages[(room, seq)] = updated
        return updated

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

    @answer
    def search_messages(self, rooms, query, user_id=None, before=None, limit=20):
        found = [m for m in self._messages.values()
                 if m.room in rooms and not m.deleted and (user_id is None or m.user_id == user_id)
                 and (before is None or (m.ts, m.id) < before) and matches(query, m.text)]
        return sorted(found, key=lambda m: (m.ts, m.id), reverse=True)[:limit]


def _active_admin(user: UserRecord) -> bool:
    return user.role == "admin" and not user.banned
