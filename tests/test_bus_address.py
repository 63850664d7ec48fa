"""Unit tests for chatd.bus.address: the ``--redis`` URL forms, their defaults, and the form safe to log."""

from __future__ import annotations

from twisted.internet import endpoints
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase

from chatd.bus.address import BadRedisUrl, RedisAddress


class ParseTests(SynchronousTestCase):
    def test_plain(self):
        """``redis://host:port/db`` gives host, port and db, with no credentials."""
        address = RedisAddress.parse("redis://cache.internal:6380/3")
        self.assertEqual((address.scheme, address.host, address.port, address.db), ("redis", "cache.internal", 6380, 3))
        self.assertIsNone(address.password)
        self.assertIsNone(address.username)
        self.assertFalse(address.tls)

    def test_defaults(self):
        """Port 6379 and database 0 when the URL names neither."""
        address = RedisAddress.parse("redis://cache")
        self.assertEqual((address.port, address.db), (6379, 0))
        self.assertEqual(RedisAddress.parse("redis://cache/").db, 0)

    def test_password_and_user(self):
        """``:password@`` and ``user:password@`` are read, percent-decoded."""
        self.assertEqual(RedisAddress.parse("redis://:s%40cret@cache:6379/0").password, "s@cret")
        address = RedisAddress.parse("redis://chatd:pw@cache:6379/0")
        self.assertEqual((address.username, address.password), ("chatd", "pw"))

    def test_tls(self):
        """``rediss://`` asks for TLS and may name the CA to trust."""
        address = RedisAddress.parse("rediss://cache:6380/0?ssl_ca_certs=/etc/ca.pem")
        self.assertTrue(address.tls)
        self.assertEqual(address.ca_file, "/etc/ca.pem")

    def test_ipv6(self):
        """A bracketed IPv6 literal is a host."""
        address = RedisAddress.parse("redis://[::1]:7000/1")
        self.assertEqual((address.host, address.port, address.db), ("::1", 7000, 1))
        self.assertEqual(address.safe, "redis://[::1]:7000/1")

    def test_unix(self):
        """``unix:///path?db=N`` names a socket and a database, with an optional password."""
        address = RedisAddress.parse("unix://:pw@/run/redis/redis.sock?db=2")
        self.assertEqual((address.scheme, address.path, address.db, address.password),
                         ("unix", "/run/redis/redis.sock", 2, "pw"))
        self.assertEqual(RedisAddress.parse("unix:///tmp/r.sock").db, 0)

    def test_refused(self):
        """Other schemes, no host, a bad port or database, unknown parameters: BadRedisUrl."""
        for url in ["http://cache", "cache:6379", "redis://", "redis://cache:0x10/0", "redis://cache:70000/0",
                    "redis://cache/db1", "redis://cache/1/2", "unix://host/path", "unix://", "redis://cache/0?x=1",
                    "redis://cache/0?ssl_ca_certs=/ca.pem"]:
            with self.subTest(url=url):
                self.assertRaises(BadRedisUrl, RedisAddress.parse, url)

    def test_refusal_never_repeats_the_password(self):
        """The error message of a refused URL does not contain its password."""
        for url in ["redis://:topsecret@cache:99999/0", "redis://:topsecret@cache/x", "ftp://:topsecret@cache"]:
            with self.subTest(url=url):
                error = self.assertRaises(BadRedisUrl, RedisAddress.parse, url)
                self.assertNotIn("topsecret", str(error))

    def test_safe_masks_the_password(self):
        """``safe`` shows everything but the password; the dataclass's repr hides it too."""
        address = RedisAddress.parse("redis://chatd:topsecret@cache:6379/4")
        self.assertEqual(address.safe, "redis://chatd:***@cache:6379/4")
        self.assertNotIn("topsecret", repr(address))
        self.assertEqual(RedisAddress.parse("redis://cache").safe, "redis://cache:6379/0")
        self.assertEqual(RedisAddress.parse("unix://:topsecret@/r.sock").safe, "unix://:***@/r.sock?db=0")


class EndpointTests(SynchronousTestCase):
    def test_endpoint_kinds(self):
        """An IP literal connects directly (v4 or v6), a name through the resolver, a socket path over UNIX."""
        reactor = MemoryReactorClock()
        self.assertIsInstance(RedisAddress.parse("redis://127.0.0.1").endpoint(reactor), endpoints.TCP4ClientEndpoint)
        self.assertIsInstance(RedisAddress.parse("redis://[::1]").endpoint(reactor), endpoints.TCP6ClientEndpoint)
        self.assertIsInstance(RedisAddress.parse("redis://cache").endpoint(reactor), endpoints.HostnameEndpoint)
        self.assertIsInstance(RedisAddress.parse("unix:///r.sock").endpoint(reactor), endpoints.UNIXClientEndpoint)

    def test_tls_endpoint(self):
        """``rediss://`` opens with a TLS ClientHello; ``redis://`` sends nothing of its own."""
        for url, tls in (("rediss://127.0.0.1:6380", True), ("redis://127.0.0.1:6380", False)):
            reactor = MemoryReactorClock()
            RedisAddress.parse(url).endpoint(reactor).connect(Factory.forProtocol(Protocol))
            transport = StringTransport()
            reactor.tcpClients[0][2].buildProtocol(None).makeConnection(transport)
            self.assertEqual(transport.value()[:1] == b"\x16", tls, url)  # 0x16: a TLS handshake record
