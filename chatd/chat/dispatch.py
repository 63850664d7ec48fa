"""The chat's way in for the WebSocket edge: sockets opening and closing, and every frame they send.

Each frame is counted against its socket's budget (``--socket-rate``; pings
too), parsed, and handed to the handler of its type: membership (join, leave),
messages, signals (typing, read), sessions (refresh), or a pong. Frames of one
socket are handled in order, so a frame sees the effects of those before it (a
message right after its join); the common frames, which need no store round
trip of their own, are handled at once when nothing is queued before them.
Every refusal or failure is answered on the socket with an ``error`` frame.
"""

from __future__ import annotations

import inspect

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from chatd import errors
from chatd.chat import frames
from chatd.chat.connection import ChatSocket
from chatd.ratelimit import Rate
from chatd.storage.records import StoreUnavailable

CLOSE_POLICY = 1008
CLOSE_SLOW_CONSUMER = 4008

_log = Logger()


def refuse(sock: ChatSocket, error: Exception, ref: str | None = None) -> None:
    """Answer a refused or failed frame with SPEC.md's ``error`` frame (``unavailable`` when the store is away)."""
    if isinstance(error, frames.FrameError):
        sock.send(frames.error_frame(error.code, error.message, error.ref or ref))
    elif isinstance(error, StoreUnavailable):
        sock.send(frames.error_frame("unavailable", "The store is unreachable; try again.", ref))
    elif isinstance(error, errors.ApiError):
        sock.send(frames.error_frame(error.code, error.message, ref))
    else:
        _log.failure("frame handler failed", failure=Failure(error))
        sock.send(frames.error_frame("internal", "Something went wrong on our side.", ref))


class Dispatcher:
    """What the edge calls: ``opened``, ``received``, ``control_frame_allowed``, ``slow_consumer``, ``closed``."""

    def __init__(self, sessions, membership, messages, signals, clock, socket_rate: Rate, metrics,
                 more=None) -> None:
        self._sessions = sessions
        self._clock = clock
        self._socket_rate = socket_rate
        self._metrics = metrics
        self.slow_consumers = 0  # sockets closed for not reading (4008)
        handlers = {
            frames.Join: membership.join, frames.Leave: membership.leave, frames.Send: messages.send,
            frames.Typing: signals.typing, frames.Read: signals.read, frames.Refresh: sessions.refresh,
            frames.Ping: self._ping,
            **(more or {}),  # frame type → handler: replies (chatd.chat.threads), reactions (chatd.chat.reactions)
        }
        # Frame type → (handler, whether it awaits the store): looked up once per frame.
        self._handlers = {kind: (handler, inspect.iscoroutinefunction(handler)) for kind, handler in handlers.items()}

    def opened(self, conn, principal) -> ChatSocket:
        """A socket passed the handshake; the returned ChatSocket is its handle for every later call."""
        return self._sessions.opened(conn, principal)

    def closed(self, sock: ChatSocket) -> None:
        self._sessions.closed(sock)

    def received(self, sock: ChatSocket, payload: bytes, is_binary: bool) -> Deferred | None:
        """Handle one frame from ``sock``; errors are answered on the socket."""
        if not self._allowed(sock):
            return None
        try:
            frame = frames.parse(payload, is_binary)
        except frames.FrameError as e:
            sock.send(frames.error_frame(e.code, e.message, e.ref))
            return None
        handler, awaits = self._handlers[type(frame)]
        if not sock.handling and not awaits:
            try:
                handler(sock, frame)
            except Exception as e:
                refuse(sock, e, getattr(frame, "client_id", None))
            return None
        sock.inbox.append((handler, frame))
        if sock.handling:
            return None
        return Deferred.fromCoroutine(self._drain(sock))

    async def _drain(self, sock: ChatSocket) -> None:
        """Handle a socket's queued frames one after another (sending does not wait for the store)."""
        sock.handling = True
        try:
            while sock.inbox:
                handler, frame = sock.inbox.popleft()
                try:
                    result = handler(sock, frame)
                    if result is not None:  # a coroutine: the handler awaits the store
                        await result
                except Exception as e:
                    refuse(sock, e, getattr(frame, "client_id", None))
        finally:
            sock.handling = False

    def control_frame_allowed(self, sock: ChatSocket) -> bool:
        """Whether a WebSocket ping (or pong) may be handled: control frames cost the same budget as
        data frames, one over the limit is dropped unanswered, and persistent flooding closes with 1008."""
        return self._allowed(sock)

    def _allowed(self, sock: ChatSocket) -> bool:
        """The per-socket rate limit; persistent flooding closes the socket with 1008."""
        if sock.bucket.take(self._clock.seconds()) == 0:
            sock.strikes = 0
            return True
        strikes = sock.strikes = sock.strikes + 1
        self._metrics.rate_limited.labels("socket").inc()
        if strikes > max(10, self._socket_rate.burst):
            sock.close(CLOSE_POLICY, "flooding")
        elif strikes == 1 or strikes % 10 == 0:
            sock.send(frames.error_frame("rate_limited", "Too many frames; slow down."))
        return False

    def slow_consumer(self, sock: ChatSocket) -> None:
        """The socket stopped reading and its backlog passed the bound: it is closed with 4008."""
        self.slow_consumers += 1
        self._metrics.slow_consumers.inc()
        sock.close(CLOSE_SLOW_CONSUMER, "slow consumer")

    @staticmethod
    def _ping(sock: ChatSocket, frame) -> None:
        sock.send(frames.PONG)
