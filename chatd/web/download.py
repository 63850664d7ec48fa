"""Sending a stored file to a client a piece at a time, at the client's pace.

The request is given a streaming producer: while the client is not reading
(Twisted's buffer is full) the next piece is not fetched from the store, so a
slow download holds one piece in memory, not the file.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from chatd.files.uploads import RELEASE_EVERY, release_chunks

PIECE = 255 * 1024  # one GridFS chunk


@implementer(IPushProducer)
class _Pace:
    def __init__(self) -> None:
        self.paused = False
        self.stopped = False
        self._waiting: Deferred | None = None

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            waiting.callback(None)

    def stopProducing(self) -> None:
        self.stopped = True
        self.resumeProducing()

    def ready(self) -> Deferred:
        if not self.paused:
            return succeed(None)
        self._waiting = Deferred()
        return self._waiting


async def send_file(request, reader, size: int) -> None:
    """Write ``size`` bytes from ``reader`` to ``request`` (which the caller then finishes)."""
    pace = _Pace()
    request.registerProducer(pace, True)
    request.notifyFinish().addErrback(lambda _: pace.stopProducing())  # the client went away
    try:
        sent = pieces = 0
        while sent < size:
            await pace.ready()
            if pace.stopped:
                return
            piece = await reader.read(min(PIECE, size - sent))
            if not piece or pace.stopped:
                return
            request.write(piece)
            sent += len(piece)
            pieces += 1
            if pieces % RELEASE_EVERY == 0:
                release_chunks()
    finally:
        request.unregisterProducer()
