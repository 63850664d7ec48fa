"""Unit tests for chatd.web.speedups.router: which protocol a connection's first bytes choose."""

from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from chatd.web.speedups.router import UpgradeRouter

ADDRESS = IPv4Address("TCP", "127.0.0.1", 40000)


class _Recording(Protocol):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.received = b""

    def dataReceived(self, data: bytes) -> None:
        self.received += data


class _Factory(ServerFactory):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.timeOut = 60

    def buildProtocol(self, addr):
        return _Recording(self.kind)


class RouterTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.router = UpgradeRouter(self.clock, _Factory("site"), _Factory("websocket"))

    def _connect(self):
        protocol = self.router.buildProtocol(ADDRESS)
        transport = StringTransport()
        transport.protocol = protocol
        protocol.makeConnection(transport)
        return transport

    def _send(self, *chunks: bytes):
        transport = self._connect()
        for chunk in chunks:
            transport.protocol.dataReceived(chunk)
        return transport

    def test_websocket_requests_go_to_autobahn(self):
        """GET /ws with a query, or bare, is handed to the WebSocket factory with every byte."""
        for request in [b"GET /ws?token=abc HTTP/1.1\r\n\r\n", b"GET /ws HTTP/1.1\r\n\r\n"]:
            with self.subTest(request=request):
                transport = self._send(request)
                self.assertEqual(transport.protocol.kind, "websocket")
                self.assertEqual(transport.protocol.received, request)

    def test_everything_else_goes_to_the_site(self):
        """Other paths, other methods and lookalikes are the site's."""
        for request in [b"GET / HTTP/1.1\r\n\r\n", b"GET /wsx HTTP/1.1\r\n\r\n", b"GET /ws/ HTTP/1.1\r\n\r\n",
                        b"POST /ws?x HTTP/1.1\r\n\r\n", b"GET /api/rooms HTTP/1.1\r\n\r\n", b"\x16\x03\x01"]:
            with self.subTest(request=request):
                transport = self._send(request)
                self.assertEqual(transport.protocol.kind, "site")
                self.assertEqual(transport.protocol.received, request)

    def test_split_first_bytes_are_kept(self):
        """A first read too short to decide is kept and joined with the next one."""
        transport = self._send(b"GE", b"T /w", b"s?token=x HTTP/1.1\r\n\r\n")
        self.assertEqual(transport.protocol.kind, "websocket")
        self.assertEqual(transport.protocol.received, b"GET /ws?token=x HTTP/1.1\r\n\r\n")

    def test_short_bytes_that_cannot_be_the_socket_go_to_the_site_at_once(self):
        """First bytes that cannot begin "GET /ws" (here "HEAD") go to the site at once, without waiting for more."""
        transport = self._send(b"HEAD")
        self.assertEqual(transport.protocol.kind, "site")

    def test_silent_connection_is_dropped_after_the_site_timeout(self):
        """A client that connects and says nothing is dropped, as the site would drop it."""
        transport = self._connect()
        self.clock.advance(59)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(2)
        self.assertTrue(transport.disconnecting)

    def test_speaking_cancels_the_timeout(self):
        """A connection that sent its request no longer has the silent-connection timer armed."""
        transport = self._send(b"GET /ws?token=x HTTP/1.1\r\n\r\n")
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertFalse(transport.disconnecting)

    def test_the_site_hears_when_the_request_began(self):
        """Bytes held while choosing count towards the site's request deadline: it is told when the first came."""
        began = []
        protocol = _Recording("site")
        protocol.request_began = began.append
        self.router.site.buildProtocol = lambda addr: protocol
        transport = self._connect()
        self.clock.advance(5)
        transport.protocol.dataReceived(b"GE")
        self.clock.advance(7)
        transport.protocol.dataReceived(b"T /healthz HTTP/1.1\r\n")
        self.assertEqual(began, [5])
