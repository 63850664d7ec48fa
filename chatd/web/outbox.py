"""A socket's outgoing bytes, bounded (SPEC.md, Details: Slow consumers).

Everything chatd sends on an open WebSocket goes through its :class:`Outbox`:
chat frames, and Autobahn's own pings, pongs and close frames
(chatd.web.ws), so a peer that stops reading costs at most ``limit`` bytes
beyond what Twisted's transport holds, and never delays anyone else.
"""

from __future__ import annotations

from collections import deque

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer


@implementer(IPushProducer)
class Outbox:
    """Bytes a socket has not taken yet, bounded.

    Registered as the transport's streaming producer: Twisted pauses it when
    its own buffer fills (the peer is not reading) and resumes it once drained.
    While paused, frames wait here; past ``limit`` bytes the droppable ones
    (typing, read) go first, and if that is not enough ``overflow`` is called.
    """

    def __init__(self, write, limit: int, overflow) -> None:
        self._write = write
        self._limit = limit
        self._overflow = overflow
        self._queue: deque[tuple[bytes, bool]] = deque()
        self._size = 0
        self.paused = False
        self.closed = False
        self.peak = 0  # the largest backlog this socket has had, in bytes

    def push(self, data: bytes, droppable: bool) -> None:
        if self.closed:
            return
        if not self.paused and not self._queue:
            self._write(data)
            return
        self._queue.append((data, droppable))
        self._size += len(data)
        self.peak = max(self.peak, self._size)
        if self._size > self._limit:
            self._drop_droppable()
            if self._size > self._limit:
                self.discard()
                self._overflow()

    def _drop_droppable(self) -> None:
        kept = deque(item for item in self._queue if not item[1])
        self._size = sum(len(data) for data, _ in kept)
        self._queue = kept

    def discard(self) -> None:
        self.closed = True
        self._queue.clear()
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        while self._queue and not self.paused and not self.closed:
            data, _ = self._queue.popleft()
            self._size -= len(data)
            self._write(data)  # may pause us again, synchronously

    def stopProducing(self) -> None:
        self.discard()
