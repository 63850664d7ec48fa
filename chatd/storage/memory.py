"""An in-memory IStore with the same Deferred-returning behaviour, for unit tests.

``down = True`` makes every call fail with StoreUnavailable, to test outages
without a process to kill.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace

from bson import ObjectId
from twisted.application.service import Service
from zope.interface import implementer

from chatd.storage.interface import IStore
from chatd.storage.memory_files import MemoryFiles, answer
from chatd.storage.memory_rooms import MemoryRooms
from chatd.storage.memory_threads import MemoryThreads
from chatd.storage.words import matches
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
class MemoryStore(MemoryRooms, MemoryFiles, MemoryThreads, Service):
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
    def search_messages(self, rooms, query, user_id=None, before=None, limit=20):
        found = [m for m in self._messages.values()
                 if m.room in rooms and not m.deleted and (user_id is None or m.user_id == user_id)
                 and (before is None or (m.ts, m.room, m.seq) < before) and matches(query, m.text)]
        return sorted(found, key=lambda m: (m.ts, m.room, m.seq), reverse=True)[:limit]


def _active_admin(user: UserRecord) -> bool:
    return user.role == "admin" and not user.banned
