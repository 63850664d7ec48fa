"""Message queries of :class:`chatd.storage.mongo.MongoStore` (a mixin; rooms and memberships: ``mongo_rooms``).

Every read here is by ``_id`` (equality or ``$in``): a message's id is
``"{room}:{seq}"`` and seqs are gap-free, so any page of history is a list of
known ids. nx-27017 only uses its primary key for such lookups; sorted or
ranged queries scan the whole collection there.
"""

from __future__ import annotations

from bson import ObjectId
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from chatd.storage.mongo_rooms import _membership_id
from chatd.storage.mongo_users import duplicate_field, utc
from chatd.storage.records import InsertStopped, Message, message_id
from chatd.storage.util import returns_deferred
from chatd.storage.words import words


def client_key(room: str, user_id: str, client_id: str) -> str:
    """The idempotency key of a message sent with a client_id (SPEC.md, Details: Idempotency)."""
    return f"client:{room}:{user_id}:{client_id}"


def dedupe_key(message: Message) -> str:
    """Unique per (room, user, client_id). Without a client_id, a fresh ObjectId: never a
    duplicate, so a clash on this index always means a resent client_id."""
    if message.client_id is None:
        return f"none:{ObjectId()}"
    return client_key(message.room, message.user_id, message.client_id)


def _message_doc(message: Message) -> dict:
    doc = {
        "_id": message.id,
        "room": message.room,
        "seq": message.seq,
        "user_id": message.user_id,
        "user": message.user,
        "ts": message.ts,
        "dedupe": dedupe_key(message),
    }
    for field in ("text", "client_id", "file", "edited_at"):
        if getattr(message, field) is not None:
            doc[field] = getattr(message, field)
    if message.deleted:
        doc["deleted"] = True
    if message.reply_to is not None:
        doc["reply_to"] = message.reply_to
    if message.reactions:
        doc["reactions"] = list(message.reactions)
        doc["rn"] = dict(message.reactors or {})
    if message.mentions:
        doc["mentions"], doc["mention_ids"] = list(message.mentions), list(message.mention_ids)
    if message.text:
        doc["words"] = words(message.text)  # what a search checks its candidates against: chatd.storage.words
    doc["ix"] = 0  # postings not written yet (chatd.storage.mongo_search)
    return doc


def _thread(doc: dict) -> dict | None:
    """A root's summary from its flat fields (kept flat so that ``$inc``/``$max`` need no dotted paths)."""
    if not doc.get("thread_replies"):
        return None
    return {"replies": int(doc["thread_replies"]), "last_reply_at": utc(doc.get("thread_last_at")),
            "last_reply_seq": int(doc.get("thread_last_seq", 0))}


def _message(doc: dict) -> Message:
    return Message(
        room=doc["room"],
        seq=doc["seq"],
        user_id=doc["user_id"],
        user=doc["user"],
        ts=utc(doc["ts"]),
        text=doc.get("text"),
        client_id=doc.get("client_id"),
        file=doc.get("file"),
        edited_at=utc(doc.get("edited_at")),
        deleted=bool(doc.get("deleted", False)),
        reply_to=doc.get("reply_to"),
        thread=_thread(doc),
        reactions=tuple(doc.get("reactions") or ()),
        reactors=doc.get("rn") or None,
        mentions=tuple(doc.get("mentions") or ()),
        mention_ids=tuple(doc.get("mention_ids") or ()),
    )


class ChatQueries:
    """Messages (their mention counts included)."""

    # -- messages ----------------------------------------------------------

    @returns_deferred
    async def insert_messages(self, messages: list[Message]) -> None:
        """Store ``messages`` in order in one round trip; InsertStopped if one was a duplicate."""
        try:
            await self._call(self._db.messages.insert_many, [_message_doc(m) for m in messages], ordered=True)
        except BulkWriteError as e:
            error = e.details["writeErrors"][0]
            reason = "client_id" if duplicate_field(error) == "dedupe" else "seq"
            await self._count_mentions(messages[:error["index"]])
            self._queue_index([m.id for m in messages[:error["index"]]])
            raise InsertStopped(error["index"], reason) from None
        self._queue_index([m.id for m in messages])  # after the ack's write, never awaited here
        await self._count_mentions(messages)

    async def _count_mentions(self, messages: list[Message]) -> None:
        """Each stored mention counted on the mentioned member's membership (none for non-members)."""
        updates = [UpdateOne({"_id": _membership_id(m.room, user_id)},
                             {"$inc": {"mentions": 1}, "$max": {"mention_seq": m.seq}})
                   for m in messages for user_id in m.mention_ids if user_id != m.user_id]
        if updates:
            await self._call(self._db.memberships.bulk_write, updates, ordered=False)

    @returns_deferred
    async def search_messages(self, rooms: list[str], query: list[str], user_id: str | None = None,
                              before: tuple | None = None, limit: int = 20) -> list[Message]:
        """Messages whose words begin with each query word, newest first (chatd.storage.mongo_search)."""
        if not rooms or not query:
            return []
        return await self._search(rooms, query, user_id, before, limit, _message)

    @returns_deferred
    async def get_messages(self, room: str, seqs: list[int]) -> list[Message]:
        """The stored messages of ``room`` with these seqs, in seq order (missing ones left out)."""
        if not seqs:
            return []
        ids = [message_id(room, seq) for seq in seqs]
        docs = await self._call(self._db.messages.find, {"_id": {"$in": ids}})
        return sorted((_message(doc) for doc in docs), key=lambda m: m.seq)

    @returns_deferred
    async def find_client_message(self, room: str, user_id: str, client_id: str) -> Message | None:
        """The message a user already sent to a room with this client_id, if any."""
        doc = await self._call(self._db.messages.find_one, {"dedupe": client_key(room, user_id, client_id)})
        return _message(doc) if doc else None

    @returns_deferred
    async def update_message(self, room: str, seq: int, changes: dict) -> Message | None:
        """Set fields of one message (None removes a field); the new message, or None if absent."""
        if "text" in changes:  # edits are searched by their current text; a tombstone by none
            changes = {**changes, "words": words(changes["text"]) or None, "ix": 0}
        sets = {k: v for k, v in changes.items() if v is not None}
        unsets = {k: "" for k, v in changes.items() if v is None}
        if "reactions" in unsets:
            # Their flags, names and counts (chatd.storage.mongo_threads) go with them.
            unsets["rk"] = unsets["rn"] = unsets["rc"] = unsets["kinds"] = ""
        update = {**({"$set": sets} if sets else {}), **({"$unset": unsets} if unsets else {})}
        _id = message_id(room, seq)
        old = None
        if "text" in changes:  # the words whose postings go (their _id is "room:seq:word")
            old = await self._call(self._db.messages.find_one, {"_id": _id}, projection={"words": 1})
        # Conditional: a message deleted meanwhile (an edit racing a deletion) is left as it is.
        # ($in with null, rather than $ne, matches the absent field on every MongoDB-wire server.)
        result = await self._call(self._db.messages.update_one, {"_id": _id, "deleted": {"$in": [False, None]}}, update)
        if not result.matched_count:
            return None
        if "text" in changes:  # its old postings go; the new text is searched by scan until indexed again
            await self._unindex(_id, (old or {}).get("words") or [])
            self._queue_index([_id])
        doc = await self._call(self._db.messages.find_one, {"_id": _id})
        return _message(doc) if doc else None

    @returns_deferred
    async def rename_author(self, user_id: str, username: str) -> None:
        """Show ``username`` as the author of every message of ``user_id``."""
        await self._call(self._db.messages.update_many, {"user_id": user_id}, {"$set": {"user": username}})
        await self.rename_reactor(user_id, username)
