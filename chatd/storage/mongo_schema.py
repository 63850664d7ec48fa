"""The schema migration of :class:`chatd.storage.mongo.MongoStore` (a mixin: ``_call``, ``_db``).

Run at every start, after the indexes (chatd.storage.schema says what each
version changed). Every write is conditional on the state it changes from, so
two processes migrating at once write the same thing once, and a second run
finds nothing left to do.
"""

from __future__ import annotations

from datetime import datetime, timezone

from pymongo import UpdateOne
from pymongo.errors import OperationFailure

from chatd.storage.mongo_rooms import _UNSET, _membership, _room
from chatd.storage.records import DuplicateKey
from chatd.storage.schema import META_ID, SCHEMA_VERSION, earliest
from chatd.storage.util import returns_deferred
from chatd.storage.words import words

WORDS_BATCH = 1000  # messages given their words per round trip by the version 3 migration


class SchemaMigration:
    """``migrate``: brings the store to SCHEMA_VERSION."""

    @returns_deferred
    async def migrate(self) -> int:
        meta = await self._call(self._db.meta.find_one, {"_id": META_ID})
        if meta is not None and int(meta.get("version", 0)) >= SCHEMA_VERSION:
            return int(meta["version"])
        # Version 2: every room without a record becomes public, owned by its earliest member.
        for doc in await self._call(self._db.rooms.find, {"visibility": _UNSET}):
            head = _room(doc)
            members = [_membership(m) for m in await self._call(self._db.memberships.find, {"room": head.name})]
            first = earliest(members)
            created_at = first.joined_at if first else (head.last_message_at or datetime.now(timezone.utc))
            await self._call(self._db.rooms.update_one, {"_id": head.name, "visibility": _UNSET}, {"$set": {
                "visibility": "public", "topic": "", "owner": first.user_id if first else None,
                "created_at": created_at}})
        # Version 3: messages stored before search get their words (a conditional write each, in batches).
        await self._index_words()
        # Version 4: messages stored before postings are marked unindexed (searched by scan until swept).
        await self._call(self._db.messages.update_many, {"ix": {"$exists": False}}, {"$set": {"ix": 0}})
        # and the version 3 index on the words array goes: postings answer searches, so it only cost writes.
        await self._drop_words_index()
        for attempt in range(2):
            try:
                await self._call(self._db.meta.update_one, {"_id": META_ID}, {"$max": {"version": SCHEMA_VERSION}},
                                 upsert=True)
                break
            except DuplicateKey:
                if attempt:  # two first upserts raced: the other one inserted it, so $max now matches
                    raise
        return SCHEMA_VERSION

    async def _drop_words_index(self) -> None:
        # Found by its key, not its name: stores name indexes their own way (nx-27017: idx_messages_words).
        for name, spec in (await self._call(self._db.messages.index_information)).items():
            if list(spec["key"]) == ["words"]:
                try:  # dropIndexes: txmongo's drop_index sends the older deleteIndexes, which nx-27017 lacks
                    await self._call(self._db.command, "dropIndexes", "messages", index=name)
                except OperationFailure:
                    pass  # another process migrating at the same time dropped it first

    async def _index_words(self) -> None:
        updates = []
        for doc in await self._call(self._db.messages.find, {"words": _UNSET, "deleted": {"$in": [False, None]}},
                                    projection={"text": 1}):
            found = words(doc.get("text"))
            if found:
                updates.append(UpdateOne({"_id": doc["_id"], "words": _UNSET}, {"$set": {"words": found}}))
            if len(updates) >= WORDS_BATCH:
                await self._call(self._db.messages.bulk_write, updates, ordered=False)
                updates = []
        if updates:
            await self._call(self._db.messages.bulk_write, updates, ordered=False)
