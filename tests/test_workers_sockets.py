"""Unit tests for chatd.workers.sockets: the parent binds the --listen sockets, a worker adopts them."""

from __future__ import annotations

import os
import socket
import tempfile

from twisted.internet import defer, endpoints, protocol, reactor
from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactor
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial.unittest import SynchronousTestCase, TestCase

from chatd.workers.sockets import AdoptingReactor, Inherited, bind, listening_socket
from tests.tls import self_signed


def _inherited(bound, tls: bool | None = None, copy: int = 0) -> Inherited:
    """A socket as a worker would receive it: a descriptor of its own (a duplicate), its TLS flag and port."""
    return Inherited(os.dup(bound.sockets[copy].fileno()), bound.tls if tls is None else tls, bound.port)


class BindTests(SynchronousTestCase):
    """The parent binds each description as Twisted would listen on it, without accepting."""

    def bound(self, description: str, copies: int = 1):
        """Bind ``description``; the sockets are closed at cleanup."""
        result = bind(description, copies)
        self.addCleanup(result.close)
        return result

    def test_tcp_port_zero_gets_a_real_port_and_listens(self):
        """``tcp:0`` binds a free port; the kernel completes connections on it although nobody accepts yet."""
        bound = self.bound("tcp:0:interface=127.0.0.1")
        self.assertFalse(bound.tls)
        self.assertNotEqual(bound.port, 0)
        self.assertEqual(bound.host, "127.0.0.1")
        self.assertFalse(bound.sockets[0].getblocking(), "adoptStreamPort needs a non-blocking socket")
        socket.create_connection(("127.0.0.1", bound.port), timeout=2).close()

    def test_ssl_description_is_read_in_the_parent(self):
        """An ``ssl:`` listener is bound as TCP and marked for TLS; a missing key file fails at once, in the parent."""
        directory = tempfile.mkdtemp(prefix="chatd-tls-")
        key, cert = self_signed(directory)
        bound = self.bound(f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}")
        self.assertTrue(bound.tls)
        with self.assertRaises(Exception):
            bind(f"ssl:0:interface=127.0.0.1:privateKey={directory}/nothing.pem:certKey={cert}")

    def test_taken_port_is_refused(self):
        """Binding a port another socket listens on raises CannotListenError."""
        bound = self.bound("tcp:0:interface=127.0.0.1")
        with self.assertRaises(CannotListenError):
            bind(f"tcp:{bound.port}:interface=127.0.0.1")

    def test_ipv6_interface_binds_ipv6(self):
        """``tcp6:`` (or an IPv6 interface) gives an IPv6 socket."""
        try:
            probe = listening_socket("::1", 0, 1)
        except CannotListenError:
            raise self.skipTest("no IPv6 loopback here") from None
        probe.close()
        bound = self.bound("tcp6:0:interface=\\:\\:1")
        self.assertEqual(bound.sockets[0].family, socket.AF_INET6)

    def test_one_socket_per_worker_on_one_port(self):
        """For three workers, three listening sockets on the one port, in one SO_REUSEPORT group."""
        bound = self.bound("tcp:0:interface=127.0.0.1", copies=3)
        self.assertEqual(len(bound.sockets), 3)
        self.assertEqual({sock.getsockname() for sock in bound.sockets}, {("127.0.0.1", bound.port)})
        for sock in bound.sockets:
            self.assertEqual(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT), 1)
            self.assertFalse(sock.getblocking())

    def test_a_port_in_use_is_refused_even_to_a_group(self):
        """A port held by another listener, or by another chatd's SO_REUSEPORT group, is refused, rather than
        joined and its connections shared."""
        plain = self.bound("tcp:0:interface=127.0.0.1")
        group = self.bound("tcp:0:interface=127.0.0.1", copies=2)
        for taken in (plain.port, group.port):
            with self.subTest(port=taken), self.assertRaises(CannotListenError):
                bind(f"tcp:{taken}:interface=127.0.0.1", 2)

    def test_unshareable_kinds_are_refused(self):
        """A ``unix:`` listener cannot be shared by workers: a ValueError saying which kinds can."""
        with self.assertRaises(ValueError) as raised:
            bind("unix:/tmp/chatd.sock")
        self.assertIn("tcp:, tcp6: and ssl:", str(raised.exception))


class AdoptionTests(SynchronousTestCase):
    """A worker's endpoints adopt the inherited sockets in --listen order, checked one by one."""

    def setUp(self):
        self.parent = [bind("tcp:0:interface=127.0.0.1"), bind("tcp:0:interface=127.0.0.1")]
        for bound in self.parent:
            self.addCleanup(bound.close)
        self.reactor = MemoryReactor()

    def listen(self, adopting: AdoptingReactor, description: str, factory=None):
        """``description``'s endpoint listening through ``adopting``: the port, or the failure raised."""
        results = []
        endpoints.serverFromString(adopting, description).listen(factory or protocol.Factory()).addBoth(results.append)
        return results[0]

    def test_adopts_in_order_with_the_real_family(self):
        """Each listen call adopts the next inherited socket (its descriptor closed after), in the reactor."""
        adopting = AdoptingReactor(self.reactor, [_inherited(b) for b in self.parent])
        factory = protocol.Factory()
        self.listen(adopting, "tcp:0", factory)
        self.listen(adopting, f"tcp:{self.parent[1].port}", factory)
        self.assertEqual([(family, f) for _, family, f in self.reactor.adoptedPorts],
                         [(socket.AF_INET, factory), (socket.AF_INET, factory)])

    def test_ssl_is_wrapped_in_tls_around_the_site(self):
        """An ``ssl:`` endpoint adopts a TLS-marked socket with a TLSMemoryBIOFactory around our factory."""
        key, cert = self_signed(tempfile.mkdtemp(prefix="chatd-tls-"))
        adopting = AdoptingReactor(self.reactor, [_inherited(self.parent[0], tls=True)])
        factory = protocol.Factory()
        self.listen(adopting, f"ssl:0:privateKey={key}:certKey={cert}", factory)
        (_, _, adopted), = self.reactor.adoptedPorts
        self.assertIsInstance(adopted, TLSMemoryBIOFactory)
        self.assertIs(adopted.wrappedFactory, factory)

    def test_mismatches_are_refused(self):
        """A plain endpoint on a TLS socket, another port than the socket's, or one listen too many: refused."""
        for inherited, description in [
            (_inherited(self.parent[0], tls=True), "tcp:0"),
            (_inherited(self.parent[0]), f"tcp:{self.parent[1].port}"),
        ]:
            with self.subTest(description=description):
                self.assertIsInstance(self.listen(AdoptingReactor(self.reactor, [inherited]), description).value,
                                      CannotListenError)
                os.close(inherited.fd)
        self.assertIsInstance(self.listen(AdoptingReactor(self.reactor, []), "tcp:0").value, CannotListenError)
        self.assertEqual(self.reactor.adoptedPorts, [])


class _Echo(protocol.Protocol):
    def dataReceived(self, data):
        self.transport.write(data)
        self.transport.loseConnection()


class _Collect(protocol.Protocol):
    def __init__(self):
        self.data = b""
        self.done = defer.Deferred()

    def connectionMade(self):
        self.transport.write(b"ping")

    def dataReceived(self, data):
        self.data += data

    def connectionLost(self, reason):
        self.done.callback(self.data)


class RealReactorTests(TestCase):
    """On the real reactor, an adopted socket serves connections; closing it leaves the parent's open."""

    async def test_adopted_socket_serves_and_parent_keeps_it(self):
        """A connection to the parent's socket is answered by the adopting reactor's factory; after the worker
        stops listening, the parent's socket still accepts connections into its backlog."""
        bound = bind("tcp:0:interface=127.0.0.1")
        self.addCleanup(bound.close)
        adopting = AdoptingReactor(reactor, [_inherited(bound)])
        port = await endpoints.serverFromString(adopting, "tcp:0").listen(protocol.Factory.forProtocol(_Echo))
        client = _Collect()
        await endpoints.connectProtocol(endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", bound.port), client)
        self.assertEqual(await client.done, b"ping")
        await port.stopListening()
        socket.create_connection(("127.0.0.1", bound.port), timeout=2).close()
