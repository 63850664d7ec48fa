"""Read receipts, written to the store at most once a second per user and room.

A reading client sends a ``read`` for every message it shows, and a user may
have many sockets: written one by one, receipts become the store's busiest
writes. Here only the newest position of each (room, user) waits, and a
LoopingCall writes what waits every ``every`` seconds (and on shutdown). A
receipt that does not move a user past what this process last heard from them
is neither written nor told to the room.
"""

from __future__ import annotations

from collections import OrderedDict

from twisted.internet.defer import ensureDeferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from chatd.storage.records import StoreUnavailable

REMEMBERED = 100_000  # (room, user) positions kept to recognise receipts that move nothing


class ReadReceipts:
    """Coalesces read positions for the store (see the module docstring)."""

    _log = Logger()

    def __init__(self, store, clock, every: float = 1.0) -> None:
        self._store = store
        self._clock = clock
        self._every = every
        self._known: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._waiting: dict[tuple[str, str], int] = {}
        self._loop: LoopingCall | None = None

    def mark(self, room: str, user_id: str, seq: int) -> bool:
        """Record that ``user_id`` read ``room`` up to ``seq``; True if that moves them forward."""
        key = (room, user_id)
        if self._known.get(key, -1) >= seq:
            return False
        self._known[key] = seq
        self._known.move_to_end(key)
        if len(self._known) > REMEMBERED:
            self._known.popitem(last=False)
        self._waiting[key] = seq
        if self._loop is None:
            self._loop = LoopingCall(self.flush)
            self._loop.clock = self._clock
            self._loop.start(self._every, now=False)
        return True

    def joined(self, room: str, user_id: str, seq: int) -> None:
        """A new member starts as having read up to ``seq`` (the store has it so): receipts behind it move nothing."""
        key = (room, user_id)
        self._known[key] = max(seq, self._known.get(key, 0))
        self._known.move_to_end(key)
        if len(self._known) > REMEMBERED:
            self._known.popitem(last=False)

    def position(self, room: str, user_id: str) -> int:
        """The newest position heard here (maybe not stored yet), 0 if none."""
        return self._known.get((room, user_id), 0)

    def flush(self):
        """Write what waits now (a Deferred); positions the store could not take wait for the next turn."""
        waiting, self._waiting = self._waiting, {}
        if not waiting and self._loop is not None and self._loop.running:
            self._loop.stop()  # idle: no timer until the next receipt
            self._loop = None
        return ensureDeferred(self._write(waiting))

    async def _write(self, waiting: dict) -> None:
        for (room, user_id), seq in waiting.items():
            try:
                await self._store.mark_read(room, user_id, seq)
            except StoreUnavailable:
                key = (room, user_id)
                self._waiting[key] = max(seq, self._waiting.get(key, 0))
            except Exception:
                self._log.failure("storing a read receipt failed")

    def stop(self):
        """On shutdown: stop the timer and write what waits."""
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        waiting, self._waiting = self._waiting, {}
        return ensureDeferred(self._write(waiting))
