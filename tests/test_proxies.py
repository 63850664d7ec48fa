"""Unit tests for ``--trusted-proxies`` (chatd.web.proxies): the client address from X-Forwarded-For (rightmost
untrusted entry; headers from an untrusted peer ignored), the browser's scheme and host from X-Forwarded-Proto
and -Host, the option itself, and both edges that use the rule: REST requests (and the access log) and the
WebSocket handshake, with the speed-ups off and on."""

from __future__ import annotations

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from chatd import tap
from chatd.chat.admission import SocketLimits
from chatd.ratelimit import Rate
from chatd.web.api.common import client_address
from chatd.web.proxies import NOBODY, TrustedProxies, request_client_host
from chatd.web.site import access_log_line
from tests.test_ws_edge import TOKEN, EdgeTestCase
from tests.wsclient import handshake_request

LOCAL = TrustedProxies.parse("127.0.0.1, 10.0.0.0/8, ::1, fd00::/8")


class ParseTests(SynchronousTestCase):
    def test_addresses_and_networks(self):
        """Single addresses and CIDR networks of both families, spaces and empty items allowed."""
        proxies = TrustedProxies.parse(" 127.0.0.1 ,10.1.2.0/24,, ::1, 2001:db8::/32 ")
        self.assertEqual([str(n) for n in proxies.networks], ["127.0.0.1/32", "10.1.2.0/24", "::1/128", "2001:db8::/32"])
        self.assertEqual(TrustedProxies.parse(""), NOBODY)

    def test_malformed_is_refused(self):
        """A name, a bad network or a bad address is an error that names the item."""
        for text in ["localhost", "10.0.0.0/33", "1.2.3", "127.0.0.1;10.0.0.1"]:
            with self.subTest(text=text):
                error = self.assertRaises(ValueError, TrustedProxies.parse, text)
                self.assertIn("not an IP address or network", str(error))

    def test_option_and_environment(self):
        """--trusted-proxies and CHATD_TRUSTED_PROXIES set it (the option wins); the default trusts nobody."""
        def config(args, **environ):
            options = tap.Options(environ=environ)
            options.parseOptions(args)
            return options.config

        self.assertEqual(config([]).trusted_proxies, NOBODY)
        self.assertTrue(config([], CHATD_TRUSTED_PROXIES="10.0.0.0/8").trusted_proxies.trusts("10.9.9.9"))
        chosen = config(["--trusted-proxies", "127.0.0.1"], CHATD_TRUSTED_PROXIES="10.0.0.0/8").trusted_proxies
        self.assertEqual((chosen.trusts("127.0.0.1"), chosen.trusts("10.9.9.9")), (True, False))
        error = self.assertRaises(UsageError, config, ["--trusted-proxies", "nginx"])
        self.assertIn("--trusted-proxies", str(error))


class ClientHostTests(SynchronousTestCase):
    def test_untrusted_peer_headers_are_ignored(self):
        """A client that is not a trusted proxy cannot choose its address, whatever it sends."""
        for header in ["1.2.3.4", "1.2.3.4, 5.6.7.8", "127.0.0.1", "garbage", ""]:
            with self.subTest(header=header):
                self.assertEqual(LOCAL.client_host("203.0.113.9", header), "203.0.113.9")
        self.assertEqual(NOBODY.client_host("127.0.0.1", "1.2.3.4"), "127.0.0.1")  # the default trusts nobody

    def test_rightmost_untrusted_entry(self):
        """Through a trusted proxy: the entry it appended; trusted hops are skipped; what the client wrote is not."""
        cases = {
            "198.51.100.7": "198.51.100.7",
            "198.51.100.7, 10.0.0.5": "198.51.100.7",  # a second, inner proxy of ours
            "1.1.1.1, 198.51.100.7": "198.51.100.7",  # the client sent X-Forwarded-For: 1.1.1.1 itself
            "1.1.1.1,198.51.100.7 ,10.0.0.5,127.0.0.1": "198.51.100.7",
            "garbage, 198.51.100.7": "198.51.100.7",  # malformed, but left of the answer: never read
            "198.51.100.7:51234": "198.51.100.7",  # some proxies add the port
        }
        for header, client in cases.items():
            with self.subTest(header=header):
                self.assertEqual(LOCAL.client_host("127.0.0.1", header), client)

    def test_all_trusted_gives_the_leftmost(self):
        """A request from inside (every hop trusted) is the leftmost address."""
        self.assertEqual(LOCAL.client_host("127.0.0.1", "10.0.0.7, 10.0.0.5"), "10.0.0.7")

    def test_missing_or_malformed_gives_the_peer(self):
        """No header, an empty one, or a malformed entry on the way: the peer itself."""
        for header in [None, "", " ", "198.51.100.7, garbage", "unknown", "198.51.100.7,,", "1.2.3.4:http",
                       "[2001:db8::1", "[2001:db8::1]x"]:
            with self.subTest(header=header):
                self.assertEqual(LOCAL.client_host("127.0.0.1", header), "127.0.0.1")

    def test_ipv6(self):
        """IPv6 entries, bare or bracketed with a port; an IPv6 proxy; an IPv4 proxy seen by a tcp6: listener."""
        self.assertEqual(LOCAL.client_host("::1", "2001:db8::1"), "2001:db8::1")
        self.assertEqual(LOCAL.client_host("::1", "[2001:db8::1]:443"), "2001:db8::1")
        self.assertEqual(LOCAL.client_host("::1", "2001:DB8:0:0::1, fd00::2"), "2001:db8::1")
        self.assertEqual(LOCAL.client_host("::ffff:127.0.0.1", "198.51.100.7"), "198.51.100.7")
        self.assertEqual(LOCAL.client_host("2001:db8::9", "198.51.100.7"), "2001:db8::9")  # not trusted

    def test_repeated_header_lines(self):
        """Several X-Forwarded-For lines count as one list, in order (as bytes, the way Twisted keeps them)."""
        self.assertEqual(LOCAL.client_host("127.0.0.1", [b"1.1.1.1", b"198.51.100.7"]), "198.51.100.7")
        self.assertEqual(LOCAL.client_host("127.0.0.1", []), "127.0.0.1")

    def test_no_peer_address(self):
        """A Unix-socket peer has no address and is never a trusted proxy."""
        self.assertIsNone(LOCAL.client_host(None, "198.51.100.7"))


class OriginViewTests(SynchronousTestCase):
    def test_trusted_proxy_names_scheme_and_host(self):
        """X-Forwarded-Proto and -Host from a trusted proxy: its first value each; Host when -Host is absent."""
        self.assertEqual(LOCAL.origin_view("127.0.0.1", "127.0.0.1:8080", False, "https", "chat.example"),
                         ("chat.example", True))
        self.assertEqual(LOCAL.origin_view("127.0.0.1", "chat.example", False, "https, http", None),
                         ("chat.example", True))
        self.assertEqual(LOCAL.origin_view("127.0.0.1", "chat.example", True, "http", None), ("chat.example", False))
        self.assertEqual(LOCAL.origin_view("127.0.0.1", "chat.example", False, "gopher", ""), ("chat.example", False))

    def test_untrusted_peer_is_taken_as_it_is(self):
        """From anyone else the connection's own scheme and Host count."""
        self.assertEqual(LOCAL.origin_view("203.0.113.9", "chat.example", False, "https", "evil.example"),
                         ("chat.example", False))


class _Site:
    def __init__(self, proxies):
        self.trusted_proxies = proxies


class _Channel:
    def __init__(self, proxies):
        self.site = _Site(proxies)


def rest_request(peer, forwarded_for=None, proxies=LOCAL) -> DummyRequest:
    request = DummyRequest([b"api", b"auth", b"login"])
    request.client = peer
    request.channel = _Channel(proxies)
    if forwarded_for is not None:
        request.requestHeaders.setRawHeaders(b"x-forwarded-for", forwarded_for)
    return request


class RestTests(SynchronousTestCase):
    def test_client_address(self):
        """REST's client address follows the site's trusted proxies; a Unix socket is "unix"."""
        self.assertEqual(client_address(rest_request(IPv4Address("TCP", "127.0.0.1", 1), [b"198.51.100.7"])),
                         "198.51.100.7")
        self.assertEqual(client_address(rest_request(IPv4Address("TCP", "203.0.113.9", 1), [b"198.51.100.7"])),
                         "203.0.113.9")
        self.assertEqual(client_address(rest_request(IPv6Address("TCP", "::1", 1), [b"1.1.1.1", b"2001:db8::5"])),
                         "2001:db8::5")
        self.assertEqual(client_address(rest_request(UNIXAddress(b"/run/chatd.sock"), [b"198.51.100.7"])), "unix")
        self.assertEqual(request_client_host(rest_request(IPv4Address("TCP", "127.0.0.1", 1), [b"1.2.3.4"], NOBODY)),
                         "127.0.0.1")

    def test_access_log_shows_the_client(self):
        """The access log line starts with the client's address, not the proxy's."""
        request = rest_request(IPv4Address("TCP", "127.0.0.1", 1), [b"198.51.100.7"])
        request.uri, request.method, request.clientproto, request.code = b"/api/x?token=t", b"GET", b"HTTP/1.1", 200
        request.sentLength = 0
        line = access_log_line("[01/Jan/2026:00:00:00 +0000]", request)
        self.assertTrue(line.startswith('"198.51.100.7" '), line)
        self.assertNotIn("token", line)


class WebSocketTests(EdgeTestCase):
    """The handshake: caps per client address, and the Origin check, behind a trusted proxy at 127.0.0.1."""

    limits = SocketLimits(handshake_rate=Rate(1, 1))

    def handshake(self, extra: str, host: str = "127.0.0.1:8080") -> bytes:
        request = handshake_request(8080, TOKEN, extra).replace(b"Host: 127.0.0.1:8080", f"Host: {host}".encode())
        _, transport = self.connect(request)
        return self.answer(transport)[0]

    def test_handshake_rate_per_forwarded_client(self):
        """Each client behind the proxy has its own handshake budget; without trust they share the proxy's."""
        self.factory.proxies = TrustedProxies.parse("127.0.0.1, 10.0.0.0/8")
        self.assertEqual(self.handshake("X-Forwarded-For: 198.51.100.1\r\n"), b"101")
        self.assertEqual(self.handshake("X-Forwarded-For: 198.51.100.1\r\n"), b"429")
        self.assertEqual(self.handshake("X-Forwarded-For: 198.51.100.2\r\n"), b"101")
        self.assertEqual(self.handshake("X-Forwarded-For: 198.51.100.2, 10.0.0.1\r\n"), b"429")  # the same client
        self.factory.proxies = NOBODY
        self.assertEqual(self.handshake("X-Forwarded-For: 198.51.100.3\r\n"), b"101")  # 127.0.0.1's own budget
        self.assertEqual(self.handshake("X-Forwarded-For: 198.51.100.4\r\n"), b"429")  # a spoofed header buys nothing

    def test_origin_through_a_tls_proxy(self):
        """The page's https Origin (port 443) passes when a trusted proxy says https; not from an untrusted peer."""
        extra = "Origin: https://chat.example\r\nX-Forwarded-Proto: https\r\n"
        self.assertEqual(self.handshake(extra, host="chat.example"), b"403")  # plain http: port 80, not 443
        self.factory.proxies = TrustedProxies.parse("127.0.0.1")
        self.assertEqual(self.handshake(extra, host="chat.example"), b"101")
        self.assertEqual(self.handshake("Origin: https://chat.example\r\nX-Forwarded-Proto: https\r\n"
                                        "X-Forwarded-Host: chat.example\r\nX-Forwarded-For: 198.51.100.9\r\n"), b"101")
        self.assertEqual(self.handshake("Origin: https://evil.example\r\nX-Forwarded-Proto: https\r\n"
                                        "X-Forwarded-For: 198.51.100.8\r\n"), b"403")


class FastWebSocketTests(WebSocketTests):
    """The same with the speed-ups (their handshake reader) installed."""

    speedups = True
