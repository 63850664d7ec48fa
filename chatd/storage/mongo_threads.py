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
from chatd.storage.records import Message, TooManyKinds, message_id
from chatd.storage.util import returns_deferred


def _hashed(prefix: str, value: str) -> str:
    """A field name for ``value`` under ``prefix`` (a hash: emoji may hold ``.`` or ``$``)."""
    return prefix + hashlib.sha1(value.encode("utf-8")).hexdigest()[:24]


def reaction_flag(key: str) -> str:
    """The field marking that a message has the reaction ``key``."""
    return _hashed("rk.", key)


_LIVE = {"$in": [False, None]}  # not deleted: matches the absent field on every MongoDB-wire server


def _get(doc: dict, path: str):
    """The value at a dotted ``path`` of ``doc``, or None."""
    for part in path.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


class ThreadQueries:
    """Reactions and thread summaries."""

    @returns_deferred
    async def react(self, room: str, seq: int, emoji: str, user_id: str, username: str, on: bool,
                    max_kinds: int = 20) -> tuple[Message | None, bool]:
        """The filters decide whether anything changes (neither modified_count nor $nin on arrays is reliable
        on every MongoDB-wire server): a flag per key in ``rk`` (absent or set), a count of users per emoji
        in ``rc`` (present while the emoji counts) and ``kinds``, the emoji counted, which a new emoji may
        only raise below ``max_kinds``, all in the same conditional write."""
        _id = message_id(room, seq)
        key = f"{emoji} {user_id}"
        flag, count = reaction_flag(key), _hashed("rc.", emoji)
        if on:
            absent = {"_id": _id, "deleted": _LIVE, flag: {"$exists": False}}
            add = {"$set": {flag: True, f"rn.{user_id}": username}, "$push": {"reactions": key}}
            for _ in range(3):  # an emoji removed or added by others meanwhile: try the other way
                result = await self._call(self._db.messages.update_one, {**absent, count: {"$exists": True}},
                                          {**add, "$inc": {count: 1}})
                if result.matched_count:
                    break
                result = await self._call(self._db.messages.update_one, {
                    **absent, count: {"$exists": False},
                    "$or": [{"kinds": {"$lt": max_kinds}}, {"kinds": {"$exists": False}}]},
                    {**add, "$inc": {count: 1, "kinds": 1}})
                if result.matched_count:
                    break
                doc = await self._call(self._db.messages.find_one, {"_id": _id})
                if doc is None or doc.get("deleted") or _get(doc, flag):
                    break  # gone, or the reaction is there already
                if _get(doc, count) is None and doc.get("kinds", 0) >= max_kinds:
                    raise TooManyKinds(max_kinds)
        else:
            result = await self._call(self._db.messages.update_one, {"_id": _id, "deleted": _LIVE, flag: True},
                                      {"$unset": {flag: ""}, "$pull": {"reactions": key}, "$inc": {count: -1}})
            if result.matched_count:  # the emoji's last user gone: it no longer counts
                await self._call(self._db.messages.update_one, {"_id": _id, count: 0},
                                 {"$unset": {count: ""}, "$inc": {"kinds": -1}})
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
        # One round trip: the root as this write left it (return_document=True: after the update).
        doc = await self._call(self._db.messages.find_one_and_update, {"_id": message_id(room, root)}, {
            "$inc": {"thread_replies": 1}, "$max": {"thread_last_at": at, "thread_last_seq": reply_seq}},
            return_document=True)
        return _message(doc) if doc else None

    @returns_deferred
    async def thread_replies(self, room: str, root: int, limit: int, before: int | None = None) -> list[Message]:
        spec: dict = {"room": room, "reply_to": root}
        if before is not None:
            spec["seq"] = {"$lt": before}
        docs = await self._call(self._db.messages.find, spec, sort=qf.sort(qf.DESCENDING("seq")), limit=limit)
        return [_message(doc) for doc in docs]
