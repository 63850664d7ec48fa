"""Storing chat messages: batched, gap-free seqs, idempotent by client_id.

Messages submitted during one reactor turn are written together in a single
ordered ``insert_many``, and the next batch waits for the previous one, so a
busy server makes few, large round trips. Seqs are assigned in memory at
flush time from each room's ``last_seq``; the store's primary key
(``room:seq``) makes a seq that another process already took fail, and the
writer then finds the true last seq and assigns again. Nothing resolves
before the store has answered: acks and broadcasts follow the write.

The Deferred from :meth:`MessageWriter.submit` fires with
``(message, duplicate)``: ``duplicate`` is true when that user had already sent
that ``client_id`` to that room, and ``message`` is then the original. Each
stored message goes to ``on_stored(message, origin)`` (the sequencer, which
advances the room and delivers it) before its sender's Deferred fires.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.logger import Logger

from chatd.chat.roomstate import RoomBook
from chatd.storage.records import InsertStopped, Message, StoreUnavailable

# The latest client_ids stored, answered without a store lookup when resent. Each entry keeps what
# an ack needs (room, seq, time), not the text: at most a few hundred bytes, so a few megabytes in all.
RECENT_CLIENT_IDS = 20_000
# A batch is also a broadcast burst: every receiver gets it within one reactor turn, before
# the kernel takes any of it. Capping it keeps a burst within a socket's transport buffer.
BATCH_MESSAGES = 100
BATCH_BYTES = 256 * 1024
# Under load, batches start at most this often: each store round trip costs far more CPU than
# a message, so a few milliseconds buy several times fewer round trips. From idle, a batch
# starts at once (at the end of the reactor turn): waiting would only add latency.
BATCH_WINDOW = 0.010
# Room heads (last seq and time, for room lists and a quick start) are written at most this
# often: they may lag, since readers probe past a stale head, and a write per batch would
# double the store round trips.
HEADS_EVERY = 1.0


@dataclass
class _Pending:
    draft: Message  # seq 0 until assigned
    waiters: list[Deferred] = field(default_factory=list)
    origin: object = None  # whatever the submitter passed; handed back to on_stored

    @property
    def key(self) -> tuple[str, str, str] | None:
        d = self.draft
        return (d.room, d.user_id, d.client_id) if d.client_id is not None else None

    def resolve(self, message: Message, duplicate: bool) -> None:
        for waiter in self.waiters:
            waiter.callback((message, duplicate))

    def fail(self, error: Exception) -> None:
        for waiter in self.waiters:
            if not waiter.called:
                waiter.errback(error)


class MessageWriter:
    """Assigns seqs and stores messages in batches; see the module docstring."""

    _log = Logger()

    def __init__(self, store, rooms: RoomBook, clock, on_stored=None, catch_up=None, mentions=None,
                 on_mentioned=None) -> None:
        self._store = store
        self._rooms = rooms
        self._clock = clock
        self._queue: list[_Pending] = []
        self._by_key: dict[tuple, _Pending] = {}  # queued or in flight, by client_id key
        self._recent: OrderedDict[tuple, Message] = OrderedDict()  # stored, by client_id key
        self._flushing = False
        self._scheduled = None
        self._dirty_heads: dict[str, tuple] = {}
        self._heads_call = None
        # Called with each stored message and its submitter's ``origin``, in seq order, before the
        # submitter's Deferred fires (the sequencer: it advances the room and delivers).
        self._on_stored = on_stored or self._append  # without a sequencer: only the room's state advances
        # Reads what other processes stored in a room past what this one knows (the sequencer).
        self._catch_up = catch_up
        # Who each message mentions, decided before it is stored (chatd.chat.mentions.MentionResolver),
        # and who is told of a mention stored here (the events' ``mentioned``), once per stored message.
        self._mentions = mentions
        self._on_mentioned = on_mentioned
        self.batches = 0
        self.window = BATCH_WINDOW
        self._started = float("-inf")  # when the last batch began

    def submit(self, room: str, user_id: str, username: str, text: str | None,
               client_id: str | None, file: dict | None = None, origin=None, reply_to: int | None = None) -> Deferred:
        waiter: Deferred = Deferred()
        key = (room, user_id, client_id) if client_id is not None else None
        if key is not None:
            known = self._recent.get(key)
            if known is not None:
                waiter.callback((known, True))
                return waiter
            pending = self._by_key.get(key)
            if pending is not None:  # the same message again before the first was stored
                pending.waiters.append(_as_duplicate(waiter))
                return waiter
        now = datetime.fromtimestamp(self._clock.seconds(), timezone.utc)
        draft = Message(room, 0, user_id, username, now, text, client_id, file, reply_to=reply_to)
        pending = _Pending(draft, origin=origin)
        pending.waiters.append(waiter)
        if key is not None:
            self._by_key[key] = pending
        self._queue.append(pending)
        self._schedule()
        return waiter

    def _schedule(self) -> None:
        """Flush at the end of this turn, or once BATCH_WINDOW has passed since the last batch began."""
        if not self._flushing and self._scheduled is None:
            delay = max(0.0, self._started + self.window - self._clock.seconds())
            self._scheduled = self._clock.callLater(delay, self._flush)

    def _flush(self) -> None:
        self._scheduled = None
        if self._queue and not self._flushing:
            self._flushing = True
            self._started = self._clock.seconds()
            batch = self._take_batch()
            ensureDeferred(self._write(batch)).addErrback(
                lambda f: self._log.failure("message batch failed unexpectedly", f)
            ).addBoth(self._flushed)

    def _take_batch(self) -> list[_Pending]:
        size, count = 0, 0
        for count, pending in enumerate(self._queue, 1):
            size += len(pending.draft.text or "") * 4 // 3 + 200  # about the size of the frame
            if count >= BATCH_MESSAGES or size >= BATCH_BYTES:
                break
        batch, self._queue = self._queue[:count], self._queue[count:]
        return batch

    def _flushed(self, _) -> None:
        self._flushing = False
        if self._queue:
            self._schedule()  # these gathered while the last batch was written

    async def _write(self, batch: list[_Pending]) -> None:
        rooms: dict = {}
        try:
            for pending in batch:
                name = pending.draft.room
                if name not in rooms:
                    rooms[name] = self._rooms.loaded(name) or await self._rooms.get(name)
                    rooms[name].busy += 1
            if self._mentions is not None:
                drafts = await self._mentions.resolve_all([pending.draft for pending in batch])
                for pending, draft in zip(batch, drafts):
                    pending.draft = draft
            while batch:
                batch = await self._insert(batch, rooms)
        except Exception as e:
            # The store may or may not have taken the rest: senders retry (the same client_id is
            # safe); a seq it took is found taken at the next write, which then catches up.
            if not isinstance(e, StoreUnavailable):
                self._log.failure("storing messages failed")
            for pending in batch:
                self._forget(pending)
                pending.fail(e if isinstance(e, StoreUnavailable) else StoreUnavailable(type(e).__name__))
        finally:
            for state in rooms.values():
                state.busy -= 1
        for name, state in rooms.items():
            if state.last_message_at is not None:
                self._dirty_heads[name] = (state.last_seq, state.last_message_at)
        if self._dirty_heads and self._heads_call is None:
            self._heads_call = self._clock.callLater(HEADS_EVERY, self._write_heads)

    async def _insert(self, batch: list[_Pending], rooms: dict) -> list[_Pending]:
        """Write the batch; return what must be written again after a duplicate stopped it."""
        next_seq = {name: state.last_seq for name, state in rooms.items()}
        drafts = []
        for pending in batch:
            d = pending.draft
            seq = next_seq[d.room] = next_seq[d.room] + 1
            drafts.append(replace(d, seq=seq))
        self.batches += 1
        try:
            await self._store.insert_messages(drafts)
            stop = None
        except InsertStopped as e:
            stop = e
        stored = len(drafts) if stop is None else stop.index
        for pending, message in zip(batch[:stored], drafts[:stored]):
            self._stored(pending, message)
        del batch[:stored]  # answered: if what follows fails, only the rest are failed
        if stop is None:
            return []
        refused, rest = batch[0], batch[1:]
        if stop.reason == "client_id" and await self._resolve_resend(refused):
            return rest
        # Another process took that seq: learn (and deliver) what it stored, then assign again.
        state = rooms[refused.draft.room]
        if self._catch_up is not None:
            await self._catch_up(state.name)
        else:
            state.reset(await self._rooms.find_last_seq(state.name, state.last_seq))
        return [refused, *rest]

    async def _resolve_resend(self, pending: _Pending) -> bool:
        """Answer a resent client_id with the message stored the first time."""
        original = await self._store.find_client_message(*pending.key)
        if original is None:
            return False
        self._forget(pending)
        self._remember(pending.key, original)
        pending.resolve(original, True)
        return True

    def _stored(self, pending: _Pending, message: Message) -> None:
        self._forget(pending)
        if pending.key is not None:
            self._remember(pending.key, message)
        try:
            self._on_stored(message, pending.origin)
        except Exception:
            # The message is stored: a failed broadcast must not turn its ack into an error.
            self._log.failure("broadcasting a stored message failed")
        if message.mention_ids and self._on_mentioned is not None:
            try:
                self._on_mentioned(message)
            except Exception:
                self._log.failure("telling mentioned users failed")
        pending.resolve(message, False)

    def _append(self, message: Message, origin) -> None:
        self._rooms.peek(message.room).append(message)

    def _remember(self, key: tuple, message: Message) -> None:
        self._recent[key] = replace(message, text=None, file=None, mentions=(), mention_ids=())
        if len(self._recent) > RECENT_CLIENT_IDS:
            self._recent.popitem(last=False)

    def _forget(self, pending: _Pending) -> None:
        if pending.key is not None and self._by_key.get(pending.key) is pending:
            del self._by_key[pending.key]

    def _write_heads(self) -> None:
        self._heads_call = None
        heads, self._dirty_heads = self._dirty_heads, {}
        ensureDeferred(self._advance(heads))

    async def _advance(self, heads: dict) -> None:
        try:
            await self._store.advance_rooms(heads)
        except StoreUnavailable:
            for name, head in heads.items():  # try again with the next write
                self._dirty_heads.setdefault(name, head)
        except Exception:
            self._log.failure("could not advance room heads")

    def stop(self):
        """Write pending room heads now (on shutdown); returns a Deferred."""
        if self._heads_call is not None and self._heads_call.active():
            self._heads_call.cancel()
        self._heads_call = None
        heads, self._dirty_heads = self._dirty_heads, {}
        return ensureDeferred(self._advance(heads)) if heads else succeed(None)


def _as_duplicate(waiter: Deferred) -> Deferred:
    """A Deferred that hands the stored message on to ``waiter``, flagged as a duplicate."""
    relay: Deferred = Deferred()
    relay.addCallbacks(lambda result: waiter.callback((result[0], True)), waiter.errback)
    return relay
