"""The MongoDB store: the only module that talks to txmongo.

Every operation is bounded by ``timeout`` seconds: txmongo queues requests
while it reconnects and would otherwise wait forever, so an unreachable store
surfaces as :class:`StoreUnavailable` (503) instead of a hung request.
txmongo reconnects by itself, at most ``max_delay`` seconds apart.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

from bson import ObjectId
from bson.codec_options import CodecOptions
from bson.binary import UuidRepresentation
from bson.errors import InvalidId
from pymongo.errors import ConnectionFailure, DuplicateKeyError
from twisted.application.service import Service
from twisted.internet import defer, error as net_error
from twisted.internet.task import deferLater
from twisted.logger import Logger
from txmongo import filter as qf
from txmongo.connection import ConnectionPool
from txmongo.errors import TimeExceeded
from zope.interface import implementer

from chatd.storage.interface import IStore
from chatd.storage.records import DuplicateKey, StoreUnavailable, UserRecord

# Failures that mean "could not reach the store", as opposed to a refused write.
_UNREACHABLE = (
    defer.TimeoutError,
    defer.CancelledError,
    TimeExceeded,
    net_error.ConnectionLost,
    net_error.ConnectionDone,
    net_error.ConnectError,
    ConnectionFailure,  # AutoReconnect and friends: txmongo lost the server mid-request
)


def _object_id(value: str) -> ObjectId | None:
    try:
        return ObjectId(value)
    except (InvalidId, TypeError):
        return None


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _user(doc: dict | None) -> UserRecord | None:
    if doc is None:
        return None
    return UserRecord(
        id=str(doc["_id"]),
        username=doc["username"],
        email=doc["email"],
        role=doc.get("role", "user"),
        created_at=_utc(doc["created_at"]),
        password_hash=bytes(doc["password_hash"]),
        banned=bool(doc.get("banned", False)),
        ban_reason=doc.get("ban_reason"),
        tokens_valid_after=float(doc.get("tokens_valid_after", 0.0)),
    )


def _user_fields(changes: dict) -> dict:
    """Domain field changes → document fields, keeping the case-folded keys in step."""
    fields = dict(changes)
    if "username" in fields:
        fields["username_key"] = fields["username"].casefold()
    if "email" in fields:
        fields["email_key"] = fields["email"].casefold()
    return fields


@implementer(IStore)
class MongoStore(Service):
    """IStore over txmongo; connects in ``startService``, creates its indexes, retries until it can."""

    name = "store"
    _log = Logger()

    def __init__(
        self,
        reactor,
        uri: Callable[[], str],
        database: str | None = None,
        timeout: float = 5.0,
        max_delay: float = 2.0,
    ) -> None:
        self._reactor = reactor
        self._uri = uri
        self._database_name = database
        self.timeout = timeout
        self._max_delay = max_delay
        self._pool: ConnectionPool | None = None
        self._db = None
        self.ready = False
        self._indexing: defer.Deferred | None = None

    # -- lifecycle ---------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        uri = self._uri()
        codec = CodecOptions(tz_aware=True, uuid_representation=UuidRepresentation.STANDARD)
        self._pool = ConnectionPool(uri, max_delay=self._max_delay, codec_options=codec)
        self._db = self._pool[self._database_name or self._pool.uri["database"] or "chatd"]
        self._indexing = defer.ensureDeferred(self._create_indexes_until_done())

    async def stopService(self) -> None:
        super().stopService()
        if self._indexing is not None:
            self._indexing.cancel()
        if self._pool is not None:
            await self._pool.disconnect()

    async def _create_indexes_until_done(self) -> None:
        delay = 0.2
        while self.running:
            try:
                await self._create_indexes()
            except StoreUnavailable:
                self._log.info("store not reachable yet; retrying index creation in {delay}s", delay=delay)
                await deferLater(self._reactor, delay)
                delay = min(delay * 2, self._max_delay)
            else:
                self.ready = True
                self._log.info("store ready")
                return

    async def _create_indexes(self) -> None:
        users = self._db.users
        await self._call(users.create_index, qf.sort(qf.ASCENDING("username_key")), unique=True, name="username_key_unique")
        await self._call(users.create_index, qf.sort(qf.ASCENDING("email_key")), unique=True, name="email_key_unique")
        # Revoked tokens only matter until they would have expired anyway.
        await self._call(
            self._db.revoked_tokens.create_index,
            qf.sort(qf.ASCENDING("expires_at")),
            expireAfterSeconds=0,
            name="expires_at_ttl",
        )

    async def _call(self, operation, *args, **kwargs):
        """Run one txmongo operation within the timeout, translating failures."""
        if self._db is None:
            raise StoreUnavailable("store not started")
        try:
            d = defer.maybeDeferred(operation, *args, **kwargs)
            return await d.addTimeout(self.timeout, self._reactor)
        except DuplicateKeyError as e:
            raise DuplicateKey("email" if "email_key" in str(e.details or e) else "username") from None
        except _UNREACHABLE as e:
            raise StoreUnavailable(type(e).__name__) from None

    def _deferred(self, coroutine) -> defer.Deferred:
        return defer.Deferred.fromCoroutine(coroutine)

    # -- IStore ------------------------------------------------------------

    def ping(self):
        return self._deferred(self._ping())

    async def _ping(self) -> None:
        await self._call(self._db.command, "ping")

    def create_user(self, username, email, password_hash, created_at):
        return self._deferred(self._create_user(username, email, password_hash, created_at))

    async def _create_user(self, username, email, password_hash, created_at) -> UserRecord:
        # An atomic counter decides who came first, so two simultaneous first
        # registrations cannot both become admin.
        counter = await self._call(
            self._db.counters.find_one_and_update,
            {"_id": "users_registered"},
            {"$inc": {"n": 1}},
            upsert=True,
            return_document=True,
        )
        doc = _user_fields(
            {
                "username": username,
                "email": email,
                "role": "admin" if counter["n"] == 1 else "user",
                "created_at": created_at,
                "password_hash": password_hash,
                "banned": False,
                "tokens_valid_after": 0.0,
            }
        )
        result = await self._call(self._db.users.insert_one, doc)
        doc["_id"] = result.inserted_id
        return _user(doc)

    def get_user(self, user_id):
        return self._deferred(self._get_user(user_id))

    async def _get_user(self, user_id: str) -> UserRecord | None:
        oid = _object_id(user_id)
        if oid is None:
            return None
        return _user(await self._call(self._db.users.find_one, {"_id": oid}))

    def find_user_by_login(self, login):
        return self._deferred(self._find_user_by_login(login))

    async def _find_user_by_login(self, login: str) -> UserRecord | None:
        key = login.casefold()
        field = "email_key" if "@" in key else "username_key"
        return _user(await self._call(self._db.users.find_one, {field: key}))

    def list_users(self, limit, after=None, ids=None):
        return self._deferred(self._list_users(limit, after, ids))

    async def _list_users(self, limit: int, after: str | None, ids) -> list[UserRecord]:
        query: dict = {}
        if after is not None:
            after_oid = _object_id(after)
            if after_oid is None:
                return []
            query["_id"] = {"$gt": after_oid}
        if ids is not None:
            wanted = [oid for oid in map(_object_id, ids) if oid is not None]
            query.setdefault("_id", {})["$in"] = wanted
        docs = await self._call(
            self._db.users.find, query, sort=qf.sort(qf.ASCENDING("_id")), limit=limit
        )
        return [_user(doc) for doc in docs]

    def update_user(self, user_id, changes):
        return self._deferred(self._update_user(user_id, changes))

    async def _update_user(self, user_id: str, changes: dict) -> UserRecord | None:
        oid = _object_id(user_id)
        if oid is None:
            return None
        if changes:
            await self._call(self._db.users.update_one, {"_id": oid}, {"$set": _user_fields(changes)})
        return await self._get_user(user_id)

    def delete_user(self, user_id):
        return self._deferred(self._delete_user(user_id))

    async def _delete_user(self, user_id: str) -> bool:
        oid = _object_id(user_id)
        if oid is None:
            return False
        result = await self._call(self._db.users.delete_one, {"_id": oid})
        return result.deleted_count == 1

    def count_admins(self):
        return self._deferred(self._count_admins())

    async def _count_admins(self) -> int:
        return await self._call(self._db.users.count_documents, {"role": "admin", "banned": False})

    def revoke_token(self, jti, expires_at):
        return self._deferred(self._revoke_token(jti, expires_at))

    async def _revoke_token(self, jti: str, expires_at: datetime) -> None:
        await self._call(
            self._db.revoked_tokens.update_one,
            {"_id": jti},
            {"$set": {"expires_at": expires_at}},
            upsert=True,
        )

    def is_token_revoked(self, jti):
        return self._deferred(self._is_token_revoked(jti))

    async def _is_token_revoked(self, jti: str) -> bool:
        return await self._call(self._db.revoked_tokens.find_one, {"_id": jti}) is not None
