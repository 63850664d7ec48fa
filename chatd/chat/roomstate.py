"""Per-room state held in memory: the last seq and a cache of recent messages.

The store answers lookups by id quickly but scans for anything sorted, so the
newest messages of each active room are kept here, already encoded as JSON.
``RoomBook`` loads a room's state from the store once and keeps the most
recently used rooms; the message writer is the only thing that advances them.

The cache is bounded in bytes, not only in messages: 128 messages of 4,000
emoji are 2 MB, and ten thousand such rooms would be gigabytes. Each room keeps
at most ``CACHED_PER_ROOM`` messages and ``ROOM_BYTES`` of them, and the book
evicts the least recently used rooms while all of them together pass
``budget`` bytes. What is not cached is read from the store by id.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Callable

from chatd.chat import frames
from chatd.storage.records import Message

CACHED_PER_ROOM = 128
ROOM_BYTES = 256 * 1024
BOOK_BYTES = 64 * 1024 * 1024
PROBE = 64


@dataclass
class Entry:
    """A cached message: enough for history, unread counts and edits."""

    seq: int
    user_id: str
    body: bytes  # SPEC.md's Message as JSON
    message: Message


def _ignore(delta: int) -> None:
    pass


class RoomState:
    """One room: ``last_seq`` and the newest messages (every seq from ``first_cached`` on).

    ``resized`` is told of every change of the cached bytes (the book's budget).
    """

    def __init__(self, name: str, last_seq: int, last_message_at: datetime | None = None,
                 resized: Callable[[int], None] = _ignore) -> None:
        self.name = name
        self.last_seq = last_seq
        self.last_message_at = last_message_at
        self._entries: deque[Entry] = deque()
        self.bytes = 0
        self.authors: Counter[str] = Counter()  # user id → cached messages of theirs
        self.reacted = 0  # cached messages with reactions: their reactors' names follow renames too
        self._resized = resized
        self.busy = 0  # writes in flight: the room must not be evicted meanwhile

    @property
    def first_cached(self) -> int:
        """The lowest seq from which the cache holds every message up to ``last_seq``."""
        return self._entries[0].seq if self._entries else self.last_seq + 1

    def append(self, message: Message) -> Entry:
        """Record a newly stored message (it must be the next seq)."""
        entry = Entry(message.seq, message.user_id, frames.message_body(message), message)
        if message.seq != self.last_seq + 1:
            self.clear()  # a gap (another process wrote): the cache restarts here
        self._entries.append(entry)
        self._account(entry, +1)
        while len(self._entries) > CACHED_PER_ROOM or (self.bytes > ROOM_BYTES and len(self._entries) > 1):
            self._account(self._entries.popleft(), -1)
        self.last_seq = message.seq
        self.last_message_at = message.ts
        return entry

    def _account(self, entry: Entry, sign: int) -> None:
        size = sign * len(entry.body)
        self.bytes += size
        self.authors[entry.user_id] += sign
        if not self.authors[entry.user_id]:
            del self.authors[entry.user_id]
        self.reacted += sign * bool(entry.message.reactors)
        self._resized(size)

    def clear(self) -> None:
        """Drop every cached message (``last_seq`` stays)."""
        self._resized(-self.bytes)
        self._entries.clear()
        self.authors.clear()
        self.reacted = 0
        self.bytes = 0

    def reset(self, last_seq: int) -> None:
        """Forget the cache: seqs up to ``last_seq`` exist but are not known here."""
        self.clear()
        self.last_seq = last_seq

    def cached(self, after: int, upto: int) -> list[Entry] | None:
        """Entries with after < seq <= upto, or None if the cache does not hold them all."""
        upto = min(upto, self.last_seq)
        if after + 1 < self.first_cached and after < upto:
            return None
        return [entry for entry in self._entries if after < entry.seq <= upto]

    def replace(self, message: Message) -> None:
        """An edited or deleted message: update its cached copy, if any."""
        for entry in self._entries:
            if entry.seq == message.seq:
                self._rewrite(entry, message)

    def update(self, seq: int, **changes) -> None:
        """Change fields of the cached copy of message ``seq`` (an edit or deletion made elsewhere), if cached."""
        for entry in self._entries:
            if entry.seq == seq:
                self._rewrite(entry, replace(entry.message, **changes))

    def rename_author(self, user_id: str, username: str) -> None:
        """Show ``username`` as the author of this user's cached messages, and in the reactions they made."""
        if user_id not in self.authors and not self.reacted:
            return
        for entry in self._entries:
            message, changes = entry.message, {}
            if entry.user_id == user_id and message.user != username:
                changes["user"] = username
            if message.reactors and message.reactors.get(user_id, username) != username:
                changes["reactors"] = {**message.reactors, user_id: username}
            if changes:
                self._rewrite(entry, replace(message, **changes))

    def _rewrite(self, entry: Entry, message: Message) -> None:
        self.reacted += bool(message.reactors) - bool(entry.message.reactors)
        before = len(entry.body)
        entry.body = frames.message_body(message)
        entry.message = message
        self.bytes += len(entry.body) - before
        self._resized(len(entry.body) - before)


class RoomBook:
    """RoomStates by name, loaded from the store on first use, least recently used evicted.

    At most ``capacity`` rooms, and while their cached messages pass ``budget``
    bytes, the least recently used rooms that are not busy are forgotten. A room
    some socket here has joined (``pinned``) is never forgotten, for its state is
    what that socket has been sent; past the budget its cached messages go instead.
    """

    def __init__(self, store, capacity: int = 10_000, budget: int = BOOK_BYTES, pinned=lambda name: False) -> None:
        self._store = store
        self._capacity = capacity
        self._budget = budget
        self._pinned = pinned
        self.bytes = 0
        self._rooms: OrderedDict[str, RoomState] = OrderedDict()

    def forget(self, name: str) -> None:
        """Drop what is known of a room; it is read from the store again on next use."""
        state = self._rooms.pop(name, None)
        if state is not None:
            self._dropped(state)

    def clear_caches(self) -> None:
        """Drop every room's cached messages (they are read from the store again); seqs stay known."""
        for state in self._rooms.values():
            state.clear()

    def rename_author(self, user_id: str, username: str) -> None:
        """Show ``username`` as the author of this user's cached messages, in every room."""
        for state in self._rooms.values():
            state.rename_author(user_id, username)

    def loaded(self, name: str) -> RoomState | None:
        """The room's state if it is in memory (counting as a use), else None: no store call."""
        state = self._rooms.get(name)
        if state is not None:
            self._rooms.move_to_end(name)
        return state

    def peek(self, name: str) -> RoomState | None:
        return self._rooms.get(name)

    async def get(self, name: str) -> RoomState:
        state = self._rooms.get(name)
        if state is not None:
            self._rooms.move_to_end(name)
            return state
        head = (await self._store.room_heads([name])).get(name)
        last = await self.find_last_seq(name, head.last_seq if head else 0)
        state = self._rooms.get(name)  # loaded by someone else while we waited
        if state is None:
            state = self._rooms[name] = RoomState(name, last, head.last_message_at if head else None, self._resized)
            self._evict()
        return state

    async def find_last_seq(self, name: str, known: int) -> int:
        """The true last seq, from a lower bound: the room head may lag behind the messages
        (a crash between the two writes, or another process writing)."""
        while True:
            found = await self._store.get_messages(name, list(range(known + 1, known + PROBE + 1)))
            if not found:
                return known
            known = found[-1].seq

    def _resized(self, delta: int) -> None:
        self.bytes += delta
        if self.bytes > self._budget:
            self._evict()

    def _dropped(self, state: RoomState) -> None:
        """A room left the book: its bytes no longer count (and later appends to it are not counted)."""
        state._resized = _ignore
        self.bytes -= state.bytes

    def _evict(self) -> None:
        while len(self._rooms) > self._capacity or self.bytes > self._budget:
            for name, state in self._rooms.items():
                if state.busy:
                    continue
                if not self._pinned(name):
                    del self._rooms[name]
                    self._dropped(state)
                    break
                if self.bytes > self._budget and state.bytes:
                    state.clear()  # its sockets keep it; only the cache goes
                    break
            else:
                return
