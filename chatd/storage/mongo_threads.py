"""Thread and reaction writes of :class:`chatd.storage.mongo.MongoStore` (a mixin of its message queries).

Both are single conditional writes, so several chatd processes may do them at
once: a reply's ``$inc``/``$max`` on its root's summary fields, and a
reaction's ``$push``/``$pull`` of its ``"<emoji> <user id>"`` key, conditional
on a flag field per key (the same user adding the same emoji twice, from two
processes, stores it once; the filter matches only when the write changes
something, so ``matched_count`` says whether it did). Replies are read through
the ``(room, reply_to, seq)`` index, the only sorted query on messages.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from txmongo import filter as qf

from chatd.storage.mongo_chat import _message
from chatd.storage.records import Message, message_id
from chatd.storage.util import returns_deferred

def reaction_flag(key: str) -> str:
    """The field marking that a message has the reaction ``key`` (a hash: emoji may hold ``.`` or ``$``)."""
    return "rk." + hashlib.sha1(key.encode("utf-8")).hexdigest()[:24]


_LIVE = {"$in": [False, None]}  # not deleted: matches the absent field on every MongoDB-wire server


class ThreadQueries:
    """Reactions and thread summaries."""

    @returns_deferred
    async def react(self, room: str, seq: int, emoji: str, user_id: str, username: str,
                    on: bool) -> tuple[Message | None, bool]:
        _id = message_id(room, seq)
        key = f"{emoji} {user_id}"
        # The filter decides whether anything changes (neither modified_count nor $nin on arrays is reliable
        # on every MongoDB-wire server): a flag per key in the ``rk`` subdocument, absent or set.
        flag = reaction_flag(key)
        if on:
            spec = {"_id": _id, "deleted": _LIVE, flag: {"$exists": False}}
            change = {"$set": {flag: True, f"rn.{user_id}": username}, "$push": {"reactions": key}}
        else:
            spec = {"_id": _id, "deleted": _LIVE, flag: True}
            change = {"$unset": {flag: ""}, "$pull": {"reactions": key}}
        result = await self._call(self._db.messages.update_one, spec, change)
        doc = await self._call(self._db.messages.find_one, {"_id": _id})
        if doc is None or doc.get("deleted"):
            return None, False
        return _message(doc), bool(result.matched_count)

    @returns_deferred
    async def rename_reactor(self, user_id: str, username: str) -> None:
        """Show ``username`` in the reactions ``user_id`` made (their names live in ``rn.<user id>``)."""
        field = f"rn.{user_id}"
        await self._call(self._db.messages.update_many, {field: {"$exists": True}}, {"$set": {field: username}})

    @returns_deferred
    async def thread_reply(self, room: str, root: int, reply_seq: int, at: datetime) -> Message | None:
        _id = message_id(room, root)
        await self._call(self._db.messages.update_one, {"_id": _id}, {
            "$inc": {"thread_replies": 1}, "$max": {"thread_last_at": at, "thread_last_seq": reply_seq}})
        doc = await self._call(self._db.messages.find_one, {"_id": _id})
        return _message(doc) if doc else None

    @returns_deferred
    async def thread_replies(self, room: str, root: int, limit: int, before: int | None = None) -> list[Message]:
        spec: dict = {"room": room, "reply_to": root}
        if before is not None:
            spec["seq"] = {"$lt": before}
        docs = await self._call(self._db.messages.find, spec, sort=qf.sort(qf.DESCENDING("seq")), limit=limit)
        return [_message(doc) for doc in docs]
