"""An in-memory IStore with the same Deferred-returning behaviour, for unit tests.

``down = True`` makes every call fail with StoreUnavailable, to test outages
without a process to kill.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

from bson import ObjectId
from twisted.application.service import Service
from twisted.internet import defer
from zope.interface import implementer

from chatd.storage.interface import IStore
from chatd.storage.records import DuplicateKey, StoreUnavailable, UserRecord


def _answer(method):
    """Run ``method`` now and wrap its result (or StoreUnavailable when down) in a Deferred."""

    def wrapper(self, *args, **kwargs):
        if self.down:
            return defer.fail(StoreUnavailable("memory store is down"))
        return defer.maybeDeferred(method, self, *args, **kwargs)

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


@implementer(IStore)
class MemoryStore(Service):
    name = "store"

    def __init__(self) -> None:
        self.ready = True
        self.down = False
        self._users: dict[str, UserRecord] = {}  # insertion order is creation order
        self._revoked: dict[str, object] = {}
        self._registered = itertools.count(1)

    def _clash(self, user_id: str | None, username: str, email: str) -> None:
        for other in self._users.values():
            if other.id == user_id:
                continue
            if other.username.casefold() == username.casefold():
                raise DuplicateKey("username")
            if other.email.casefold() == email.casefold():
                raise DuplicateKey("email")

    @_answer
    def ping(self):
        return None

    @_answer
    def create_user(self, username, email, password_hash, created_at):
        self._clash(None, username, email)
        role = "admin" if next(self._registered) == 1 else "user"
        user = UserRecord(str(ObjectId()), username, email, role, created_at, password_hash)
        self._users[user.id] = user
        return user

    @_answer
    def get_user(self, user_id):
        return self._users.get(user_id)

    @_answer
    def find_user_by_login(self, login):
        key = login.casefold()
        field = "email" if "@" in key else "username"
        for user in self._users.values():
            if getattr(user, field).casefold() == key:
                return user
        return None

    @_answer
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

    @_answer
    def update_user(self, user_id, changes):
        user = self._users.get(user_id)
        if user is None:
            return None
        updated = replace(user, **changes)
        self._clash(user_id, updated.username, updated.email)
        self._users[user_id] = updated
        return updated

    @_answer
    def delete_user(self, user_id):
        return self._users.pop(user_id, None) is not None

    @_answer
    def count_admins(self):
        return sum(1 for user in self._users.values() if user.role == "admin" and not user.banned)

    @_answer
    def revoke_token(self, jti, expires_at):
        self._revoked[jti] = expires_at

    @_answer
    def is_token_revoked(self, jti):
        return jti in self._revoked
