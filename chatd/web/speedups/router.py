"""Speed-up: one port for the site and the WebSocket; connections opened for ``/ws`` skip Twisted's HTTP layer.

This is a hack, and says so (as Crossbar's ``router/unisocket.py`` does for the
same first-bytes switch): it swaps the protocol under a live transport, the way
Autobahn's own ``WebSocketResource`` does, by setting ``transport.protocol``
(plain TCP) or ``wrappedProtocol`` (TLS, a ``ProtocolWrapper``). Neither is an
interface Twisted promises; ``tests/test_speedups_contract.py`` checks both on
the installed Twisted.

**Why it is worth it.** A WebSocket handshake that goes through the site is
parsed twice: by Twisted (request line, headers, a ``Request`` object,
resource traversal) and, after ``WebSocketResource`` writes the request back
out as bytes, again by Autobahn, which does its own parsing and validation
anyway. That first pass is a third of the handshake's CPU: ~100 µs less per
handshake without it (docs/PERFORMANCE.md, issue 3). So each connection's
first bytes are looked at: a connection whose first request is ``GET /ws``
goes straight to the Autobahn protocol (what ``WebSocketResource`` would have
built); anything else to the site, unchanged. ``/ws`` stays mounted in the
site (chatd.web.upgrade) for an upgrade that comes later on a kept-alive
connection, and for every upgrade when the speed-ups are off. At most the
first 8 bytes of a connection are held while deciding.
"""

from __future__ import annotations

from twisted.internet.protocol import Protocol, ServerFactory
from twisted.protocols.policies import ProtocolWrapper

# The request line of a WebSocket handshake for /ws (with or without a query).
_WS_STARTS = (b"GET /ws?", b"GET /ws ")
_SNIFF = len(_WS_STARTS[0])


def _is_prefix_of_ws(data: bytes) -> bool:
    return any(start.startswith(data) for start in _WS_STARTS)


def switch_protocol(transport, protocol) -> None:
    """Make ``protocol`` the receiver of ``transport``'s bytes from now on, and connect it."""
    if isinstance(transport, ProtocolWrapper):  # TLS: the wrapper is our transport
        transport.wrappedProtocol = protocol
    else:
        transport.protocol = protocol
    protocol.makeConnection(transport)


class _FirstBytes(Protocol):
    """Waits for a connection's first bytes, then hands the connection to the site or the WebSocket."""

    def __init__(self, router: "UpgradeRouter", addr) -> None:
        self._router = router
        self._addr = addr
        self._buffer = b""
        self._timeout = None
        self._first_byte_at: float | None = None

    def connectionMade(self) -> None:
        # The site drops a connection that says nothing for its timeOut; so does this.
        self._timeout = self._router.reactor.callLater(self._router.site.timeOut, self.transport.abortConnection)

    def dataReceived(self, data: bytes) -> None:
        if self._first_byte_at is None and data:
            self._first_byte_at = self._router.reactor.seconds()
        data = self._buffer + data
        if len(data) < _SNIFF and _is_prefix_of_ws(data):
            self._buffer = data  # too short to tell yet (a split first packet)
            return
        self._buffer = b""
        self._cancel_timeout()
        if data.startswith(_WS_STARTS):
            protocol = self._router.websocket.buildProtocol(self._addr)
        else:
            protocol = self._router.site.buildProtocol(self._addr)
        if protocol is None:
            self.transport.loseConnection()
            return
        began = getattr(protocol, "request_began", None)  # the site's deadline counts the bytes held here
        if began is not None:
            began(self._first_byte_at)
        switch_protocol(self.transport, protocol)
        protocol.dataReceived(data)

    def connectionLost(self, reason) -> None:
        self._cancel_timeout()

    def _cancel_timeout(self) -> None:
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
        self._timeout = None


class UpgradeRouter(ServerFactory):
    """The factory to listen with: ``site`` for HTTP, ``websocket`` for connections opened for ``/ws``."""

    def __init__(self, reactor, site, websocket) -> None:
        self.reactor = reactor
        self.site = site
        self.websocket = websocket

    def buildProtocol(self, addr) -> _FirstBytes:
        return _FirstBytes(self, addr)

    def startFactory(self) -> None:
        self.site.doStart()
        self.websocket.doStart()

    def stopFactory(self) -> None:
        self.site.doStop()
        self.websocket.doStop()
