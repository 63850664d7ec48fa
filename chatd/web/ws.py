"""``/ws``: the Autobahn edge of the chat (SPEC.md, WebSocket).

The protocol checks the token and the Origin in ``onConnect``, then hands
frames to the chat (:class:`chatd.chat.dispatch.Dispatcher`) and sends what it
answers: it is the chat's :class:`chatd.chat.connection.IChatConnection`. Outgoing
bytes, Autobahn's pongs, pings and close frames included, go through a bounded
:class:`Outbox`, so a socket that stops reading costs at most ``OUTBOX_LIMIT``
bytes and never delays anyone else; pings count against the socket's rate
limit like frames.

The handshake is bounded too: its head may take ``MAX_HANDSHAKE`` bytes, a
refusal answers SPEC.md's error body without repeating anything the client
sent (Autobahn's own wording quotes the request line, token and all), and
Autobahn's status page (its version, and a redirect to any ``?redirect=``) is off.

:class:`ChatProtocol` is correct on its own (it serves every socket with
``CHATD_SPEEDUPS=0``); chatd.web.speedups subclasses it at start, through the
hooks ``_writer`` and ``_read_head`` and Autobahn's ``dataReceived`` and
``onMessageEnd``. All of the above applies either way.
"""

from __future__ import annotations

import socket
import struct

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.protocol import PreparedMessage
from autobahn.websocket.types import ConnectionDeny
from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger
from zope.interface import implementer

from chatd import errors
from chatd.chat.admission import Admission
from chatd.chat.connection import IChatConnection
from chatd.web import handshake
from chatd.web.cors import OriginPolicy
from chatd.web.outbox import Outbox
from chatd.web.proxies import NOBODY, TrustedProxies
from chatd.web.render import SERVER, raw_error

_log = Logger()

MAX_MESSAGE = 64 * 1024
CLOSE_GOING_AWAY = 1001
# SPEC.md bounds a socket's unsent bytes at 1 MiB: up to TRANSPORT_BUFFER wait in Twisted's
# write buffer (it reaches the kernel on the next reactor turn), the rest in our Outbox.
TRANSPORT_BUFFER = 256 * 1024
OUTBOX_LIMIT = 1024 * 1024 - TRANSPORT_BUFFER
# The request line and headers of a handshake (as Twisted's own limit for HTTP requests).
MAX_HANDSHAKE = 16 * 1024
_OPEN = WebSocketServerProtocol.STATE_OPEN
_CONNECTING = WebSocketServerProtocol.STATE_CONNECTING
_PING, _PONG = 9, 10


def prepare(payload: bytes) -> PreparedMessage:
    """Frame a server text message once, for any number of sockets (never compressed, never masked)."""
    return PreparedMessage(payload, False, False, True)


@implementer(IChatConnection)
class ChatProtocol(WebSocketServerProtocol):
    """One socket: the chat's connection (chatd.chat.connection.IChatConnection)."""

    _write = None  # bytes to the socket (see _writer), set on connectionMade
    principal = None  # who passed the handshake, until the socket opens
    _socket = None  # the chat's handle for this socket (a ChatSocket), once open
    _ticket = None  # this connection's places in the socket caps (chatd.chat.admission)
    _outbox: Outbox | None = None
    _head_read = False  # the handshake's head is in; onConnect is deciding
    _closing = False  # a close frame is being written (it may pass a discarded outbox)

    def connectionMade(self) -> None:
        self._write = self._writer()
        super().connectionMade()
        # Frames are small and latency matters; Nagle would hold some back for 40 ms.
        try:
            self.transport.setTcpNoDelay(True)
        except (AttributeError, OSError):
            handle = getattr(self.transport, "getHandle", lambda: None)()
            if isinstance(handle, socket.socket):
                handle.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _writer(self):
        """How bytes reach the socket: ``transport.write`` (a hook for chatd.web.speedups.fastwrite)."""
        return self.transport.write

    def processHandshake(self) -> None:
        """Read the handshake's head once it is all there, within MAX_HANDSHAKE bytes.

        At most MAX_HANDSHAKE bytes are held until the socket opens: a longer head is
        refused with 431 (Autobahn would buffer until its open-handshake timeout).
        """
        if len(self.data) > MAX_HANDSHAKE + 4 and (self._head_read or self.data.find(b"\r\n\r\n") < 0):
            self.failHandshake("request head too large", 431)
            return
        if self._head_read:
            return  # bytes sent before the answer wait for it (Autobahn would read the head again)
        end = self.data.find(b"\r\n\r\n")
        if end < 0:
            return  # not all there yet (Autobahn's open-handshake timeout still runs)
        if end > MAX_HANDSHAKE:
            self.failHandshake("request head too large", 431)
            return
        self._head_read = True
        self._read_head(end)

    def _read_head(self, end: int) -> None:
        """The head is ``self.data[:end]``: Autobahn reads it (a hook for chatd.web.speedups.handshake)."""
        super().processHandshake()

    def succeedHandshake(self, res) -> None:
        if self.state == _CONNECTING:  # not if refused or gone while onConnect was deciding
            super().succeedHandshake(res)

    def failHandshake(self, reason: str, code: int = 400, responseHeaders=None) -> None:
        """Refuse the handshake with SPEC.md's error body and close.

        Autobahn's reasons quote what the client sent (the request line with its token,
        header values): they go neither into the answer nor into the log.
        """
        if self.state != _CONNECTING:
            return
        error = handshake.refusal(code, reason)
        self.wasNotCleanReason = f"handshake refused with {error.status}"  # dropConnection logs it
        # Only Autobahn's own constant headers (Sec-WebSocket-Version: 13) are passed on.
        extra = [(name.encode("ascii"), str(value).encode("ascii")) for name, value in responseHeaders or ()]
        self._write(raw_error(error, extra))
        self.dropConnection(abort=False)

    def onConnect(self, request) -> Deferred:
        """Accept the handshake if the Origin is allowed and the token is good (callbacks, as in chatd.accounts.auth).
        A trusted proxy's X-Forwarded-* headers give the client's address, scheme and host (chatd.web.proxies)."""
        factory = self.factory
        headers = request.headers
        peer = getattr(self.transport.getPeer(), "host", None)
        host, secure = factory.proxies.origin_view(peer, headers.get("host"), factory.secure(self),
                                                   headers.get("x-forwarded-proto"), headers.get("x-forwarded-host"))
        if not factory.origins.allows(headers.get("origin"), host, secure):
            return fail(ConnectionDeny(403, "origin not allowed"))
        try:
            self._ticket = factory.admission.admit(factory.proxies.client_host(peer, headers.get("x-forwarded-for")))
        except errors.ApiError as refused:
            return fail(ConnectionDeny(429, refused.message))
        token = (request.params.get("token") or [None])[0]
        return factory.accounts.authenticate(token).addCallback(self._authorized).addErrback(handshake.deny)

    def _authorized(self, principal) -> None:
        try:
            self.factory.admission.admit_user(self._ticket, principal.user.id)
        except errors.ApiError as refused:
            raise ConnectionDeny(429, refused.message) from None
        self.principal = principal

    def onOpen(self) -> None:
        self._outbox = Outbox(self._write, OUTBOX_LIMIT, self._slow_consumer)
        # Twisted pauses its producer past bufferSize (64 KiB by default): a single burst to a
        # healthy reader would already count as backlog, so its share of the bound is larger.
        self.transport.bufferSize = TRANSPORT_BUFFER
        # When the handshake came through the site (WebSocketResource), the HTTP channel
        # registered itself as the producer; the socket is ours now.
        # (Twisted's TCP and TLS transports accept this when none is registered.)
        self.transport.unregisterProducer()
        self.transport.registerProducer(self._outbox, True)
        self._socket = self.factory.chat.opened(self, self.principal)
        self.principal = None  # not needed any more; keep connections small

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        # Everything Autobahn writes once the socket is open (pongs, pings, close frames) joins
        # the bounded outbox, behind the frames already waiting there. Before that (the 101)
        # it goes out at once, rather than after every other handshake of the reactor turn.
        # Autobahn's chopped and synced writes (an unbounded queue on a timer) are never used;
        # nor are its traffic statistics.
        outbox = self._outbox
        if outbox is None:
            self._write(data)
        elif not outbox.closed:
            outbox.push(data, False)
        elif self._closing:
            self._write(data)  # a close frame after the backlog was thrown away: small, and the last

    def sendCloseFrame(self, code=None, reasonUtf8=None, isReply: bool = False) -> None:
        self._closing = True
        try:
            super().sendCloseFrame(code=code, reasonUtf8=reasonUtf8, isReply=isReply)
        finally:
            self._closing = False

    def processControlFrame(self) -> bool:
        # Pings (and pongs) cost the socket's frame budget: a flood of them is refused and closed
        # like a flood of frames, and never answered past the limit.
        opcode = self.current_frame.opcode
        if opcode in (_PING, _PONG) and self.state == _OPEN:
            if not self.factory.chat.control_frame_allowed(self._socket):
                self.control_frame_data = None
                return True
            if opcode == _PONG and self.autoPingPending and b"".join(self.control_frame_data) != self.autoPingPending:
                self.control_frame_data = None
                return True  # unsolicited (RFC 6455 allows them): Autobahn would log a warning for each
        return super().processControlFrame()

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.factory.chat.received(self._socket, payload, isBinary)

    def onClose(self, wasClean: bool, code, reason) -> None:
        if self._outbox is not None:
            self._outbox.discard()
            self.factory.chat.closed(self._socket)
            self.factory.metrics.socket_closed(self._outbox.peak)
            self._outbox = None

    def connectionLost(self, reason) -> None:
        super().connectionLost(reason)
        if self._ticket is not None:
            self.factory.admission.release(self._ticket)  # however the connection ended

    # -- IChatConnection: what the chat calls --------------------------------

    def send(self, payload: bytes, droppable: bool = False) -> None:
        self.send_prepared(prepare(payload), droppable)

    def send_prepared(self, prepared, droppable: bool = False) -> None:
        if self._outbox is not None and self.state == _OPEN:
            self._outbox.push(prepared.payloadHybi, droppable)

    def send_prepared_together(self, prepared_messages) -> None:
        """Several frames in one write (one system call): a message and its ack, say."""
        if self._outbox is not None and self.state == _OPEN:
            self._outbox.push(b"".join(p.payloadHybi for p in prepared_messages), False)

    def close(self, code: int, reason: str) -> None:
        if self.state != _OPEN:
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
        if self.state != _OPEN:
            return
        if self._outbox is not None:
            self._outbox.discard()
        payload = struct.pack("!H", CLOSE_GOING_AWAY) + b"server stopping"
        self.transport.write(bytes([0x88, len(payload)]) + payload)  # FIN + close opcode, unmasked
        self.transport.loseConnection()

    def _slow_consumer(self) -> None:
        self.factory.chat.slow_consumer(self._socket)


class ChatFactory(WebSocketServerFactory):
    """Builds ChatProtocols with chatd's limits: 64 KiB messages, auto-ping, no compression.

    (While the speed-ups run, chatd.web.speedups.Speedups replaces ``protocol``.)
    """

    protocol = ChatProtocol

    def __init__(self, chat, accounts, origins: OriginPolicy, admission: Admission, metrics,
                 auto_ping: float = 20.0, proxies: TrustedProxies = NOBODY) -> None:
        super().__init__(server=SERVER.decode("ascii"))  # Autobahn's default names its version
        self.chat, self.accounts, self.origins, self.admission, self.metrics = chat, accounts, origins, admission, metrics
        self.proxies = proxies  # whose X-Forwarded-* headers count (chatd.web.proxies)
        self.setProtocolOptions(
            maxFramePayloadSize=MAX_MESSAGE,
            maxMessagePayloadSize=MAX_MESSAGE,
            autoPingInterval=auto_ping,
            autoPingTimeout=auto_ping,
            openHandshakeTimeout=10,
            closeHandshakeTimeout=2,
            failByDrop=False,  # send the close code (1009, 1002...) before dropping the TCP connection
            webStatus=False,  # no status page (Autobahn's version, and a redirect to any ?redirect=)
            versions=[13],  # RFC 6455 only (Autobahn also speaks the draft Hybi-10 as version 8)
            # No permessage-deflate: frames are framed once for every receiver (prepared messages).
            perMessageCompressionAccept=lambda offers: None,
        )

    @staticmethod
    def secure(protocol) -> bool:
        return getattr(protocol.transport, "TLS", False) or hasattr(protocol.transport, "getPeerCertificate")
