"""Threads (SPEC.md, Details: Threads): replies, their root's summary, and the thread route.

A ``message`` frame with ``reply_to`` is a reply: its root is the message it
names, or that message's own root when it names a reply (threads are one level
deep). A reply is a message like any other (the room's next seq, the writer's
batches, the same delivery); once it is stored, its root's summary is counted
in the store in one atomic write (so replies stored by several processes at
once all count), written into the cached history, and told to the room as a
``thread`` frame (chatd.chat.events, and the bus).
"""

from __future__ import annotations

from twisted.internet.defer import ensureDeferred
from twisted.logger import Logger

from chatd import errors
from chatd.chat import frames
from chatd.chat.connection import ChatSocket, require_joined
from chatd.chat.roomstate import RoomBook
from chatd.storage.records import Message


async def find_message(store, rooms: RoomBook, room: str, seq: int) -> Message | None:
    """The message ``seq`` of ``room``: from the cached history when it is there, else from the store."""
    state = rooms.peek(room)
    if state is not None:
        cached = state.cached(seq - 1, seq)
        if cached:
            return cached[0].message
    found = await store.get_messages(room, [seq])
    return found[0] if found else None


class Threads:
    """Replies on the socket (``reply``), the root's summary after each, and pages of a thread for REST."""

    _log = Logger()

    def __init__(self, store, rooms: RoomBook, events, messages) -> None:
        self._store = store
        self._rooms = rooms
        self._events = events
        self._messages = messages  # chatd.chat.messages.Messages: a reply is sent as any message

    async def root_of(self, room: str, seq: int, ref: str | None = None) -> int:
        """The seq of the thread a reply to ``seq`` belongs to; ``not_found`` when there is no such message
        (a deleted one included: it can take no replies)."""
        message = await find_message(self._store, self._rooms, room, seq)
        if message is None or message.deleted:
            raise frames.FrameError("not_found", f"no message {seq} in {room}", ref)
        return message.reply_to if message.reply_to is not None else message.seq

    async def reply(self, sock: ChatSocket, frame: frames.Reply) -> None:
        """A ``message`` frame with ``reply_to``: sent once its root is known (frames after it wait, so one
        socket's messages keep their order)."""
        require_joined(self._messages.registry, sock, frame.room, frame.client_id)
        root = await self.root_of(frame.room, frame.reply_to, frame.client_id)
        self._messages.send(sock, frame, reply_to=root, stored=self._counted)

    def _counted(self, message: Message) -> None:
        ensureDeferred(self.reply_stored(message)).addErrback(
            lambda f: self._log.failure("counting a reply in its thread failed", f))

    async def reply_stored(self, message: Message) -> None:
        """Count a newly stored reply in its root's summary: store, cached history, ``thread`` frame."""
        root = await self._store.thread_reply(message.room, message.reply_to, message.seq, message.ts)
        if root is None or root.thread is None:
            return
        state = self._rooms.peek(message.room)
        if state is not None:
            state.update(root.seq, thread=root.thread)
        self._events.thread_updated(message.room, root.seq, root.thread)

    async def page(self, room: str, seq: int, limit: int, before: int | None) -> dict:
        """GET .../messages/{seq}/thread (the caller may read the room): the root, and the latest ``limit``
        replies before ``before``, oldest first; ``next_before`` for the next older page, null at the start.
        A reply's seq answers its root's thread."""
        root = await find_message(self._store, self._rooms, room, seq)
        if root is not None and root.reply_to is not None:
            root = await find_message(self._store, self._rooms, room, root.reply_to)
        if root is None:
            raise errors.not_found("No such message.")
        found = await self._store.thread_replies(room, root.seq, limit + 1, before)
        more = len(found) > limit
        replies = list(reversed(found[:limit]))
        return {"root": root, "messages": replies, "next_before": replies[0].seq if more else None}
