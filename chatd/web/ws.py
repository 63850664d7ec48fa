"""``/ws``: the Autobahn edge of the chat (SPEC.md, WebSocket).

The protocol checks the token and the Origin in ``onConnect``, then hands
frames to :class:`chatd.chat.ChatService` and sends what it answers. Outgoing
bytes go through a bounded :class:`Outbox`, so a socket that stops reading
costs at most ``OUTBOX_LIMIT`` bytes and never delays anyone else.
"""

from __future__ import annotations

import socket
import struct
from collections import deque

from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.protocol import PreparedMessage
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger
from zope.interface import implementer
from twisted.internet.interfaces import IPushProducer

from chatd import errors
from chatd.web import autobahn_tuning, fastframes, fastwrite, handshake
from chatd.web.cors import OriginPolicy

autobahn_tuning.install()
_log = Logger()

MAX_MESSAGE = 64 * 1024
CLOSE_GOING_AWAY = 1001
# SPEC.md bounds a socket's unsent bytes at 1 MiB: up to TRANSPORT_BUFFER wait in Twisted's
# write buffer (it reaches the kernel on the next reactor turn), the rest in our Outbox.
TRANSPORT_BUFFER = 256 * 1024
OUTBOX_LIMIT = 1024 * 1024 - TRANSPORT_BUFFER


@implementer(IPushProducer)
class Outbox:
    """Bytes a socket has not taken yet, bounded.

    Registered as the transport's streaming producer: Twisted pauses it when
    its own buffer fills (the peer is not reading) and resumes it once drained.
    While paused, frames wait here; past ``limit`` bytes the droppable ones
    (typing, read) go first, and if that is not enough ``overflow`` is called.
    """

    def __init__(self, write, limit: int, overflow, stats) -> None:
        self._stats = stats  # where the largest backlog seen is recorded
        self._write = write
        self._limit = limit
        self._overflow = overflow
        self._queue: deque[tuple[bytes, bool]] = deque()
        self._size = 0
        self.paused = False
        self.closed = False

    def push(self, data: bytes, droppable: bool) -> None:
        if self.closed:
            return
        if not self.paused and not self._queue:
            self._write(data)
            return
        self._queue.append((data, droppable))
        self._size += len(data)
        self._stats.peak_outbox = max(self._stats.peak_outbox, self._size)
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


def _deny(failure) -> None:
    """An authentication failure as the handshake's HTTP refusal."""
    failure.trap(errors.ApiError)
    status = failure.value.status
    if status == 403:
        raise ConnectionDeny(403, "banned")
    if status == 503:
        raise ConnectionDeny(503, "store unavailable")
    raise ConnectionDeny(401, "invalid token")


def prepare(payload: bytes) -> PreparedMessage:
    """Frame a server text message once, for any number of sockets (never compressed, never masked)."""
    return PreparedMessage(payload, False, False, True)


class ChatProtocol(WebSocketServerProtocol):
    """One socket. Implements the connection ChatService talks to (see chatd.chat)."""

    user_id = username = jti = None
    _write = None  # bytes to the socket (chatd.web.fastwrite), set on connectionMade
    expires_at = issued_at = 0.0
    principal = None
    _outbox: Outbox | None = None

    def connectionMade(self) -> None:
        self._write = fastwrite.writer_for(self.transport)
        super().connectionMade()
        # Frames are small and latency matters; Nagle would hold some back for 40 ms.
        try:
            self.transport.setTcpNoDelay(True)
        except (AttributeError, OSError):
            handle = getattr(self.transport, "getHandle", lambda: None)()
            if isinstance(handle, socket.socket):
                handle.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def processHandshake(self) -> None:
        """The plain handshake every client sends, read by chatd.web.handshake; the rest by Autobahn."""
        end = self.data.find(b"\r\n\r\n")
        if end < 0:
            return  # not all there yet (Autobahn's open-handshake timeout still runs)
        upgrade = handshake.parse_upgrade(self.data[:end])
        if upgrade is None:
            super().processHandshake()
            return
        # What Autobahn's processHandshake records, for succeedHandshake and anyone reading it.
        self.http_request_data = self.data[:end + 4]
        self.http_status_line = upgrade.status_line
        self.http_headers = upgrade.headers
        self.http_request_uri = upgrade.uri
        self.http_request_path = upgrade.path
        self.http_request_params = upgrade.params
        self.http_request_host = upgrade.host
        self.websocket_version = 13
        self.websocket_protocols = []
        self.websocket_origin = upgrade.origin
        self.websocket_extensions = []  # offers declined unread (see chatd.web.handshake)
        self._wskey = upgrade.key
        self.data = self.data[end + 4:]
        request = ConnectionRequest(self.peer, upgrade.headers, upgrade.host, upgrade.path, upgrade.params,
                                    13, upgrade.origin, [], [])
        self.onConnect(request).addCallbacks(self.succeedHandshake, self._refuse_handshake)

    def _refuse_handshake(self, failure) -> None:
        if failure.check(ConnectionDeny):
            self.failHandshake(failure.value.reason, failure.value.code)
            return
        _log.failure("unexpected error checking a WebSocket handshake", failure)
        self.failHandshake("Internal server error", ConnectionDeny.INTERNAL_SERVER_ERROR)

    def onConnect(self, request) -> Deferred:
        """Accept the handshake if the Origin is allowed and the token is good (callbacks, as in Accounts)."""
        factory = self.factory
        origin = request.headers.get("origin")
        if not factory.origins.allows(origin, request.headers.get("host"), factory.secure(self)):
            return fail(ConnectionDeny(403, "origin not allowed"))
        token = (request.params.get("token") or [None])[0]
        return factory.accounts.authenticate(token).addCallbacks(self._authorized, _deny)

    def _authorized(self, principal) -> None:
        self.principal = principal
        self.user_id = principal.user.id
        self.username = principal.user.username
        self.jti = principal.claims.jti
        self.expires_at = principal.claims.exp
        self.issued_at = principal.claims.iat

    def onOpen(self) -> None:
        self._outbox = Outbox(self._write, OUTBOX_LIMIT, self._slow_consumer, self.factory.chat)
        # Twisted pauses its producer past bufferSize (64 KiB by default): a single burst to a
        # healthy reader would already count as backlog, so its share of the bound is larger.
        self.transport.bufferSize = TRANSPORT_BUFFER
        # When the handshake came through the site (WebSocketResource), the HTTP channel
        # registered itself as the producer; the socket is ours now.
        # (Twisted's TCP and TLS transports accept this when none is registered.)
        self.transport.unregisterProducer()
        self.transport.registerProducer(self._outbox, True)
        self.factory.chat.opened(self, self.principal)
        self.principal = None  # not needed any more; keep connections small

    def dataReceived(self, data: bytes) -> None:
        # Complete text frames go straight to the chat (see chatd.web.fastframes); anything
        # else, or anything while Autobahn holds part of a frame, takes Autobahn's path.
        if self.state == WebSocketServerProtocol.STATE_OPEN and not self.data and not self.inside_message \
                and self.current_frame is None:
            payloads, consumed = fastframes.split_text_frames(data, MAX_MESSAGE)
            received = self.factory.chat.received
            for payload in payloads:
                if self.state != WebSocketServerProtocol.STATE_OPEN:
                    return  # closed by a frame before (flooding): the rest is not read
                received(self, payload, False)
            data = data[consumed:]
            if not data:
                return
        self._dataReceived(data)

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        # Autobahn's own writes (the 101 response, pings, close frames) go out at once too,
        # rather than after every other handshake of the reactor turn: a wave of clients
        # connecting together each get their answer as soon as it is ready. (Its traffic
        # statistics, unused by chatd, are not kept on this path.)
        if sync or chopsize or self.send_queue:
            super().sendData(data, sync, chopsize)
        else:
            self._write(data)

    def onMessageEnd(self) -> None:
        # Autobahn's version also fires a "message" event to observers through txaio
        # (chatd registers none) and tracks timings (off): ~15 µs per frame for nothing.
        if not self.failedByMe:
            self.factory.chat.received(self, b"".join(self.message_data), self.message_is_binary)
        self.message_data = None

    def onClose(self, wasClean: bool, code, reason) -> None:
        if self._outbox is not None:
            self._outbox.discard()
            self.factory.chat.closed(self)
            self._outbox = None

    # -- the connection ChatService talks to -------------------------------

    def send(self, payload: bytes, droppable: bool = False) -> None:
        self.send_prepared(prepare(payload), droppable)

    def send_prepared(self, prepared, droppable: bool = False) -> None:
        if self._outbox is not None and self.state == WebSocketServerProtocol.STATE_OPEN:
            self._outbox.push(prepared.payloadHybi, droppable)

    def send_prepared_together(self, prepared_messages) -> None:
        """Several frames in one write (one system call): a message and its ack, say."""
        if self._outbox is not None and self.state == WebSocketServerProtocol.STATE_OPEN:
            self._outbox.push(b"".join(p.payloadHybi for p in prepared_messages), False)

    def close(self, code: int, reason: str) -> None:
        if self.state != WebSocketServerProtocol.STATE_OPEN:
            return
        if self._outbox is not None:
            self._outbox.discard()
        # sendClose only takes 1000 and 3000-4999; 1008 is a policy close we may send.
        self.sendCloseFrame(code=code, reasonUtf8=reason.encode("utf-8")[:123], isReply=False)

    def going_away(self) -> None:
        """The server is stopping: a 1001 close frame, then the connection is closed.

        Autobahn's closing handshake would wait for the peer's answer with a timer
        that outlives the service; at shutdown nobody waits for the answer.
        """
        if self.state != WebSocketServerProtocol.STATE_OPEN:
            return
        if self._outbox is not None:
            self._outbox.discard()
        payload = struct.pack("!H", CLOSE_GOING_AWAY) + b"server stopping"
        self.transport.write(bytes([0x88, len(payload)]) + payload)  # FIN + close opcode, unmasked
        self.transport.loseConnection()

    def _slow_consumer(self) -> None:
        self.factory.chat.slow_consumer(self)


class ChatFactory(WebSocketServerFactory):
    """Builds ChatProtocols with chatd's limits: 64 KiB messages, auto-ping, no compression."""

    protocol = ChatProtocol

    def __init__(self, chat, accounts, origins: OriginPolicy, auto_ping: float = 20.0) -> None:
        super().__init__()
        self.chat = chat
        self.accounts = accounts
        self.origins = origins
        self.setProtocolOptions(
            maxFramePayloadSize=MAX_MESSAGE,
            maxMessagePayloadSize=MAX_MESSAGE,
            autoPingInterval=auto_ping,
            autoPingTimeout=auto_ping,
            openHandshakeTimeout=10,
            closeHandshakeTimeout=2,
            failByDrop=False,  # send the close code (1009, 1002...) before dropping the TCP connection
            # No permessage-deflate: frames are framed once for every receiver (prepared messages).
            perMessageCompressionAccept=lambda offers: None,
        )
        self.protocol = autobahn_tuning.protocol_with_options(self, ChatProtocol)

    @staticmethod
    def secure(protocol) -> bool:
        return getattr(protocol.transport, "TLS", False) or hasattr(protocol.transport, "getPeerCertificate")


def ws_resource(factory: ChatFactory) -> WebSocketResource:
    return WebSocketResource(factory)
