"""User and token queries of :class:`chatd.storage.mongo.MongoStore` (a mixin: ``_call``, ``_db``)."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import UpdateOne
from txmongo import filter as qf

from chatd.storage.records import LastAdmin, UserRecord
from chatd.storage.util import returns_deferred


def object_id(value: str) -> ObjectId | None:
    try:
        return ObjectId(value)
    except (InvalidId, TypeError):
        return None


def utc(value: datetime | str | None) -> datetime | None:
    """A stored time as an aware UTC datetime; an ISO string is accepted too (some
    MongoDB-compatible servers store a datetime given through ``$set`` as text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def duplicate_field(details: dict) -> str:
    """Which unique key a duplicate-key error names: from ``keyPattern`` (MongoDB), else from the
    index name in the message (nx-27017) — never from the duplicated value, which the message
    also quotes and which may contain anything."""
    pattern = details.get("keyPattern")
    if pattern:
        keys = set(pattern)
    else:
        match = re.search(r"index:? '?([\w.$-]+)", details.get("errmsg", ""))
        keys = {match.group(1)} if match else set()
    for field in ("email_key", "username_key", "dedupe"):
        if any(field in key for key in keys):
            return field.removesuffix("_key")
    return "_id"


def _user(doc: dict | None) -> UserRecord | None:
    if doc is None:
        return None
    return UserRecord(
        id=str(doc["_id"]),
        username=doc["username"],
        email=doc["email"],
        role=doc.get("role", "user"),
        created_at=utc(doc["created_at"]),
        password_hash=bytes(doc["password_hash"]),
        banned=bool(doc.get("banned", False)),
        ban_reason=doc.get("ban_reason"),
        tokens_valid_after=float(doc.get("tokens_valid_after", 0.0)),
        rooms=tuple(doc.get("rooms", ())),
    )


def _user_fields(changes: dict) -> dict:
    """Domain field changes → document fields, keeping the case-folded keys in step."""
    fields = dict(changes)
    if "username" in fields:
        fields["username_key"] = fields["username"].casefold()
    if "email" in fields:
        fields["email_key"] = fields["email"].casefold()
    return fields


CHANGE_FEED_KEPT = 3600  # seconds a user change stays in the feed
ADMINS = "admins"  # the counters document that counts admin seats


def _ends_admin(changes: dict) -> bool:
    """Whether ``changes`` may take away a user's admin powers."""
    return changes.get("role", "admin") != "admin" or changes.get("banned") is True


class UserQueries:
    """Users and revoked tokens.

    The last-admin rule is kept by the store, atomically, without transactions:
    every admin who is not banned holds an ``admin_seat`` on their user document,
    and ``counters.admins.n`` counts the seats. Giving up a seat first takes it
    from the user (one conditional write: two requests for the same user cannot
    both do it), then takes one from the count only while it is above one (one
    conditional write: two admins demoting themselves at once cannot both get
    past it). A seat is taken back if either step fails. The count may lag
    behind the truth after a crash between two writes, always on the safe side
    (fewer seats than admins), and mends itself at the next change of that user.
    """

    async def _init_admin_seats(self) -> None:
        """Give every admin a seat and count them, once per database (stores from before seats)."""
        if await self._call(self._db.counters.find_one, {"_id": ADMINS}) is not None:
            return
        active = {"role": "admin", "banned": False}
        await self._call(self._db.users.update_many, active, {"$set": {"admin_seat": True}})
        count = await self._call(self._db.users.count_documents, active)
        await self._call(self._db.counters.update_one, {"_id": ADMINS}, {"$setOnInsert": {"n": count}}, upsert=True)

    async def _release_admin_seat(self, oid: ObjectId) -> None:
        """Take the user's admin seat away, unless it is the last one (LastAdmin); nothing if they hold none."""
        released = await self._call(self._db.users.update_one, {"_id": oid, "admin_seat": True},
                                    {"$set": {"admin_seat": False}})
        if not released.matched_count:
            return
        counted = await self._call(self._db.counters.update_one, {"_id": ADMINS, "n": {"$gt": 1}}, {"$inc": {"n": -1}})
        if not counted.matched_count:
            await self._call(self._db.users.update_one, {"_id": oid}, {"$set": {"admin_seat": True}})
            raise LastAdmin()

    async def _claim_admin_seat(self, oid: ObjectId) -> None:
        """Give an admin who is not banned and holds no seat their seat (and count it)."""
        claimed = await self._call(
            self._db.users.update_one,
            {"_id": oid, "role": "admin", "banned": False, "admin_seat": {"$in": [False, None]}},
            {"$set": {"admin_seat": True}},
        )
        if claimed.matched_count:
            await self._call(self._db.counters.update_one, {"_id": ADMINS}, {"$inc": {"n": 1}}, upsert=True)

    @returns_deferred
    async def create_user(self, username, email, password_hash, created_at) -> UserRecord:
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
                "rooms": [],
            }
        )
        result = await self._call(self._db.users.insert_one, doc)
        doc["_id"] = result.inserted_id
        if doc["role"] == "admin":
            await self._claim_admin_seat(result.inserted_id)
        return _user(doc)

    @returns_deferred
    async def get_user(self, user_id: str) -> UserRecord | None:
        oid = object_id(user_id)
        if oid is None:
            return None
        return _user(await self._call(self._db.users.find_one, {"_id": oid}))

    @returns_deferred
    async def get_users(self, user_ids) -> list[UserRecord]:
        oids = [oid for oid in map(object_id, user_ids) if oid is not None]
        if not oids:
            return []
        return [_user(doc) for doc in await self._call(self._db.users.find, {"_id": {"$in": oids}})]

    @returns_deferred
    async def find_user_by_login(self, login: str) -> UserRecord | None:
        key = login.casefold()
        field = "email_key" if "@" in key else "username_key"
        return _user(await self._call(self._db.users.find_one, {field: key}))

    @returns_deferred
    async def list_users(self, limit: int, after: str | None = None, ids=None) -> list[UserRecord]:
        query: dict = {}
        if after is not None:
            after_oid = object_id(after)
            if after_oid is None:
                return []
            query["_id"] = {"$gt": after_oid}
        if ids is not None:
            wanted = [oid for oid in map(object_id, ids) if oid is not None]
            query.setdefault("_id", {})["$in"] = wanted
        docs = await self._call(self._db.users.find, query, sort=qf.sort(qf.ASCENDING("_id")), limit=limit)
        return [_user(doc) for doc in docs]

    @returns_deferred
    async def update_user(self, user_id: str, changes: dict) -> UserRecord | None:
        oid = object_id(user_id)
        if oid is None:
            return None
        if changes:
            if _ends_admin(changes):
                await self._release_admin_seat(oid)
            try:
                result = await self._call(self._db.users.update_one, {"_id": oid}, {"$set": _user_fields(changes)})
            finally:
                await self._claim_admin_seat(oid)  # a granted role, or a seat released for a refused write
            if result.matched_count:
                await self._changed(user_id)
        return _user(await self._call(self._db.users.find_one, {"_id": oid}))

    @returns_deferred
    async def delete_user(self, user_id: str) -> bool:
        oid = object_id(user_id)
        if oid is None:
            return False
        doc = await self._call(self._db.users.find_one, {"_id": oid}, projection={"rooms": 1})
        if doc is None:
            return False
        await self._release_admin_seat(oid)
        # Memberships first: if the store fails midway, the user still exists and a retry
        # finishes the job (rather than a deleted user counted as a member forever).
        rooms = list(doc.get("rooms", ()))
        if rooms:
            await self._call(self._db.memberships.delete_many, {"user_id": user_id})
            updates = [UpdateOne({"_id": room}, {"$inc": {"members": -1}}) for room in rooms]
            await self._call(self._db.rooms.bulk_write, updates, ordered=False)
            await self._call(self._db.users.update_one, {"_id": oid}, {"$set": {"rooms": []}})
        result = await self._call(self._db.users.delete_one, {"_id": oid})
        if result.deleted_count == 1:
            await self._changed(user_id)
        return result.deleted_count == 1

    async def _changed(self, user_id: str) -> None:
        """Record a change for users_changed_since: other processes drop their copy and re-check sockets."""
        now = time.time()
        document = {"user": user_id, "at": now, "expires_at": datetime.fromtimestamp(now + CHANGE_FEED_KEPT, timezone.utc)}
        await self._call(self._db.user_changes.insert_one, document)

    @returns_deferred
    async def users_changed_since(self, since: float) -> list[str]:
        docs = await self._call(self._db.user_changes.find, {"at": {"$gte": since}}, projection={"user": 1})
        return list(dict.fromkeys(doc["user"] for doc in docs))

    @returns_deferred
    async def revoke_token(self, jti: str, expires_at: datetime) -> None:
        fields = {"expires_at": expires_at, "expires": expires_at.timestamp(), "revoked_at": time.time()}
        await self._call(self._db.revoked_tokens.update_one, {"_id": jti}, {"$set": fields}, upsert=True)

    @returns_deferred
    async def revoked_since(self, since: float | None) -> list[tuple[str, float]]:
        query = {"expires": {"$gt": time.time()}} if since is None else {"revoked_at": {"$gte": since}}
        docs = await self._call(self._db.revoked_tokens.find, query, projection={"expires": 1})
        return [(doc["_id"], float(doc.get("expires", 0))) for doc in docs]

    @returns_deferred
    async def is_token_revoked(self, jti: str) -> bool:
        return await self._call(self._db.revoked_tokens.find_one, {"_id": jti}) is not None
