"""Room and membership queries of :class:`chatd.storage.mongo.MongoStore` (a mixin: ``_call``, ``_db``).

Room heads are keyed by name, memberships by ``"{room}:{user_id}"``: every
write here is by ``_id``, conditional where two processes could race.
"""

from __future__ import annotations

from datetime import datetime

from pymongo import UpdateOne
from txmongo import filter as qf

from chatd.storage.mongo_users import object_id, utc
from chatd.storage.records import DuplicateKey, Membership, RoomHead
from chatd.storage.util import returns_deferred


def _room(doc: dict) -> RoomHead:
    return RoomHead(
        name=doc["_id"],
        last_seq=int(doc.get("last_seq", 0)),
        last_message_at=utc(doc.get("last_message_at")),
        members=max(0, int(doc.get("members", 0))),
        visibility=doc.get("visibility"),
        topic=doc.get("topic") or "",
        owner_id=doc.get("owner"),
        created_at=utc(doc.get("created_at")),
    )


# Matches a field that is null or absent on every MongoDB-wire server (nx-27017's $ne does not
# match absent fields in update filters).
_UNSET = {"$in": [None]}


def _membership(doc: dict) -> Membership:
    return Membership(
        room=doc["room"],
        user_id=doc["user_id"],
        joined_at=utc(doc["joined_at"]),
        joined_seq=int(doc.get("joined_seq", 0)),
        read_seq=int(doc.get("read_seq", 0)),
        role=doc.get("role") or "member",
        mentions=int(doc.get("mentions", 0)),
        mention_seq=int(doc.get("mention_seq", 0)),
    )


_KINDS = ("public", "private", "direct")


def _membership_id(room: str, user_id: str) -> str:
    return f"{room}:{user_id}"


class RoomQueries:
    """Room heads and memberships."""

    # -- rooms -------------------------------------------------------------

    @returns_deferred
    async def room_heads(self, rooms: list[str]) -> dict[str, RoomHead]:
        """What is known of each room; rooms never seen are absent."""
        docs = await self._call(self._db.rooms.find, {"_id": {"$in": list(rooms)}})
        return {doc["_id"]: _room(doc) for doc in docs}

    @returns_deferred
    async def list_rooms(self) -> list[RoomHead]:
        return [_room(doc) for doc in await self._call(self._db.rooms.find, {})]

    @returns_deferred
    async def advance_rooms(self, heads: dict[str, tuple[int, datetime]]) -> None:
        """Raise each room's last seq and last message time (never lowers them)."""
        if heads:
            updates = [
                UpdateOne({"_id": room}, {"$max": {"last_seq": seq, "last_message_at": at}}, upsert=True)
                for room, (seq, at) in heads.items()
            ]
            await self._call(self._db.rooms.bulk_write, updates, ordered=False)

    @returns_deferred
    async def create_room(self, name: str, visibility: str, topic: str, owner_id: str | None,
                          created_at: datetime) -> RoomHead:
        """The room's record; DuplicateKey if it has one. A head without a record (messages or members
        from before) is matched and given one; otherwise the upsert inserts ``_id = name``, which the
        primary key refuses when another process recorded the room first."""
        fields = {"visibility": visibility, "topic": topic, "owner": owner_id, "created_at": created_at}
        await self._call(self._db.rooms.update_one, {"_id": name, "visibility": _UNSET}, {"$set": fields}, upsert=True)
        return _room(await self._call(self._db.rooms.find_one, {"_id": name}))

    @returns_deferred
    async def update_room(self, name: str, changes: dict) -> RoomHead | None:
        """Set topic and/or visibility of a recorded room."""
        result = await self._call(self._db.rooms.update_one, {"_id": name, "visibility": {"$in": list(_KINDS)}},
                                  {"$set": dict(changes)})
        if not result.matched_count:
            return None
        return _room(await self._call(self._db.rooms.find_one, {"_id": name}))

    @returns_deferred
    async def hand_room(self, name: str, owner_was: str | None, owner_id: str | None) -> bool:
        """A new owner, only if ``owner_was`` still owns it (one conditional write)."""
        owner = _UNSET if owner_was is None else owner_was
        result = await self._call(self._db.rooms.update_one, {"_id": name, "owner": owner}, {"$set": {"owner": owner_id}})
        return result.matched_count == 1

    # -- memberships -------------------------------------------------------

    @returns_deferred
    async def add_membership(self, room: str, user_id: str, joined_at: datetime, joined_seq: int,
                             role: str = "member") -> bool:
        """Make the user a member; False if they already were."""
        doc = {"_id": _membership_id(room, user_id), "room": room, "user_id": user_id,
               "joined_at": joined_at, "joined_seq": joined_seq, "read_seq": joined_seq, "role": role}
        try:
            await self._call(self._db.memberships.insert_one, doc)
        except DuplicateKey:
            return False
        await self._call(self._db.users.update_one, {"_id": object_id(user_id)}, {"$addToSet": {"rooms": room}})
        await self._call(self._db.rooms.update_one, {"_id": room}, {"$inc": {"members": 1}}, upsert=True)
        return True

    @returns_deferred
    async def remove_membership(self, room: str, user_id: str) -> bool:
        """End the membership; False if there was none."""
        result = await self._call(self._db.memberships.delete_one, {"_id": _membership_id(room, user_id)})
        if result.deleted_count != 1:
            return False
        await self._call(self._db.users.update_one, {"_id": object_id(user_id)}, {"$pull": {"rooms": room}})
        await self._call(self._db.rooms.update_one, {"_id": room}, {"$inc": {"members": -1}})
        return True

    @returns_deferred
    async def memberships(self, user_id: str, rooms: list[str]) -> list[Membership]:
        """The user's memberships of these rooms (by id: no scan)."""
        ids = [_membership_id(room, user_id) for room in rooms]
        docs = await self._call(self._db.memberships.find, {"_id": {"$in": ids}}) if ids else []
        return [_membership(doc) for doc in docs]

    @returns_deferred
    async def room_memberships(self, room: str, limit: int) -> list[Membership]:
        """Up to ``limit`` memberships of ``room``, those read furthest first."""
        docs = await self._call(self._db.memberships.find, {"room": room},
                                sort=qf.sort(qf.DESCENDING("read_seq") + qf.ASCENDING("joined_at")), limit=limit)
        return [_membership(doc) for doc in docs]

    @returns_deferred
    async def set_role(self, room: str, user_id: str, role: str) -> Membership | None:
        _id = _membership_id(room, user_id)
        result = await self._call(self._db.memberships.update_one, {"_id": _id}, {"$set": {"role": role}})
        if not result.matched_count:
            return None
        doc = await self._call(self._db.memberships.find_one, {"_id": _id})
        return _membership(doc) if doc else None

    @returns_deferred
    async def mark_read(self, room: str, user_id: str, seq: int) -> None:
        _id = _membership_id(room, user_id)
        await self._call(self._db.memberships.update_one, {"_id": _id}, {"$max": {"read_seq": seq}})
        # Read past the latest mention: none is unread any more (a filter on a present field: portable).
        await self._call(self._db.memberships.update_one, {"_id": _id, "mention_seq": {"$lte": seq}, "mentions": {"$gt": 0}},
                         {"$set": {"mentions": 0}})
