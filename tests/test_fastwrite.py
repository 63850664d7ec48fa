"""Direct socket writes (chatd.web.speedups.fastwrite): same bytes, same order as transport.write, on a real
loopback connection. The Twisted attributes it reads are checked in tests/test_speedups_contract.py."""

from __future__ import annotations

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    TCP4ServerEndpoint,
    connectProtocol,
)
from twisted.trial.unittest import TestCase

from chatd.web.speedups import fastwrite
from tests.harness import wait_until


class _Server(protocol.Protocol):
    def connectionMade(self):
        self.factory.connected.callback(self)


class _Collector(protocol.Protocol):
    def __init__(self):
        self.data = b""

    def dataReceived(self, data):
        self.data += data


class FastWriteTests(TestCase):
    async def setUp(self):
        factory = protocol.Factory.forProtocol(_Server)
        factory.connected = defer.Deferred()
        self.port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
        self.addCleanup(self.port.stopListening)
        self.client = _Collector()
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.port.getHost().port), self.client)
        self.server = await factory.connected
        self.addCleanup(self.server.transport.abortConnection)
        self.addCleanup(self.client.transport.abortConnection)

    def test_plain_tcp_gets_the_direct_writer(self):
        """A plain TCP server transport with nothing buffered gets the direct writer, not transport.write."""
        transport = self.server.transport
        self.assertTrue(fastwrite._buffer_empty(transport))
        self.assertIsNot(fastwrite.writer_for(transport), transport.write)

    async def test_direct_write_skips_the_reactor_when_idle(self):
        """With nothing buffered, the bytes go to the kernel at once (Twisted's buffer stays empty)."""
        write = fastwrite.writer_for(self.server.transport)
        write(b"hello ")
        self.assertTrue(fastwrite._buffer_empty(self.server.transport))
        write(b"world")
        await wait_until(lambda: self.client.data == b"hello world", 5, "the bytes")

    async def test_order_is_kept_behind_buffered_bytes(self):
        """Bytes written after others that Twisted still buffers arrive after them."""
        write = fastwrite.writer_for(self.server.transport)
        self.server.transport.write(b"first ")  # buffered until the next reactor turn
        write(b"second ")
        write(b"third")
        await wait_until(lambda: self.client.data == b"first second third", 5, "the bytes in order")

    async def test_large_write_falls_back_for_the_rest(self):
        """What the kernel does not take at once is handed to Twisted and still arrives whole."""
        payload = bytes(range(256)) * 40_000  # 10 MB, more than the socket buffers hold
        fastwrite.writer_for(self.server.transport)(payload)
        await wait_until(lambda: len(self.client.data) == len(payload), 20, "all of it")
        self.assertEqual(self.client.data, payload)

    def test_tls_and_other_transports_use_transport_write(self):
        """Anything but a plain TCP server transport gets transport.write itself."""
        class Other:
            def write(self, data):
                pass
        other = Other()
        self.assertEqual(fastwrite.writer_for(other), other.write)
