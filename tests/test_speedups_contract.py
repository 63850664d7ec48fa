"""What the speed-ups (chatd.web.speedups) read of Twisted, Autobahn and PyJWT is there, in the installed versions.

Each speed-up relies on private attributes and methods that a library may rename or drop in any release
(setup.py pins the major versions tested). These tests name every one of them, check that it exists with the
kind and signature the speed-up expects, and, where Autobahn's own code is what the speed-up stands in for,
that this code still assigns or reads no name the speed-up does not know of: an upgrade then fails here,
loudly, instead of silently breaking or slowing a socket. The last class does the same for the few
internals that chatd.web.ws reads whether the speed-ups are on or off.
"""

from __future__ import annotations

import ast
import inspect
import os
import socket
import textwrap
from pprint import pformat

import autobahn.twisted.websocket as twisted_websocket
import autobahn.websocket.protocol as websocket_protocol
import txaio
from autobahn.util import hltype, hlval
from autobahn.websocket.protocol import WebSocketProtocol, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionRequest
from jwt.algorithms import HMACAlgorithm
from jwt.api_jws import PyJWS
from twisted.internet import defer, protocol, reactor, tcp
from twisted.internet.address import IPv4Address
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint, connectProtocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.protocols.policies import ProtocolWrapper
from twisted.protocols.tls import TLSMemoryBIOProtocol
from twisted.trial.unittest import SynchronousTestCase, TestCase

from chatd.web.speedups import FastChatProtocol, autobahn_tuning, jwt_hs256
from chatd.web.speedups.router import switch_protocol
from chatd.web.ws import ChatProtocol
from tests.harness import wait_until
from tests.wsclient import handshake_request

SECRET = b"s" * 64


def self_names(function) -> tuple[set[str], set[str]]:
    """The ``self.<name>`` attributes ``function``'s source assigns, and those it reads."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    assigned, read = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            (assigned if isinstance(node.ctx, ast.Store) else read).add(node.attr)
    return assigned, read


def parameters(function) -> list[str]:
    """The names of ``function``'s parameters, in order."""
    return list(inspect.signature(function).parameters)


class OnClockTestCase(SynchronousTestCase):
    """Autobahn's timers (open-handshake timeout, auto-ping) on a Clock, not the test run's reactor."""

    def setUp(self):
        self.patch(txaio.config, "loop", Clock())


class _Factory:
    """Just enough of a ChatFactory for a protocol to take a handshake (the chat itself is not reached)."""

    def __init__(self, protocol_class) -> None:
        from chatd.web.ws import ChatFactory

        self.real = ChatFactory(chat=None, accounts=None, origins=None, admission=None, metrics=None)
        self.protocol_class = protocol_class

    def protocol(self) -> WebSocketServerProtocol:
        """A protocol connected to a StringTransport whose onConnect never answers (the handshake stays read)."""
        proto = self.protocol_class()
        proto.factory = self.real
        proto.onConnect = lambda request: defer.Deferred()
        proto.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000)))
        return proto


# What Autobahn's processHandshake assigns that the fast reader leaves alone, and why.
HANDSHAKE_NOT_SET = {
    "peer": "rewritten from X-Forwarded-For only when trustXForwardedFor is set, which chatd never sets "
            "(chatd.web.proxies reads it in onConnect)",
    "wasServingFlashSocketPolicyFile": "a Flash policy request is not a handshake the fast reader takes",
}
# What the fast reader sets (chatd.web.speedups.handshake.FastHandshake._read_head).
HANDSHAKE_SET = {"http_request_data", "http_status_line", "http_headers", "http_request_uri", "http_request_path",
                 "http_request_params", "http_request_host", "websocket_version", "websocket_protocols",
                 "websocket_origin", "websocket_extensions", "_wskey", "data"}


class HandshakeReaderContractTests(OnClockTestCase):
    """chatd.web.speedups.handshake stands in for Autobahn's WebSocketServerProtocol.processHandshake."""

    def test_autobahn_records_nothing_the_fast_reader_does_not(self):
        """Every attribute Autobahn's processHandshake assigns is set by the fast reader too (or known not needed)."""
        assigned, _ = self_names(WebSocketServerProtocol.processHandshake)
        self.assertEqual(assigned - set(HANDSHAKE_NOT_SET), HANDSHAKE_SET)

    def test_succeed_handshake_reads_what_the_fast_reader_sets(self):
        """succeedHandshake answers with ``_wskey`` and reads the protocols, extensions and leftover data it is given."""
        _, read = self_names(WebSocketServerProtocol.succeedHandshake)
        self.assertIn("_wskey", read)
        assigned, _ = self_names(WebSocketServerProtocol.processHandshake)
        self.assertLessEqual(read & assigned, HANDSHAKE_SET)

    def test_both_readers_leave_the_same_values(self):
        """The same plain handshake read by Autobahn and by the fast reader leaves equal attributes behind."""
        request = handshake_request(8080, "a.b.c", extra="Origin: http://127.0.0.1:8080\r\nCookie: a=1\r\n") + b"extra"
        plain, fast = _Factory(ChatProtocol).protocol(), _Factory(FastChatProtocol).protocol()
        for proto in (plain, fast):
            proto.dataReceived(request)
        for name in sorted(HANDSHAKE_SET):
            with self.subTest(attribute=name):
                self.assertEqual(getattr(fast, name), getattr(plain, name))

    def test_connection_request_signature(self):
        """ConnectionRequest takes the nine arguments the fast reader passes, in that order."""
        self.assertEqual(parameters(ConnectionRequest.__init__),
                         ["self", "peer", "headers", "host", "path", "params", "version", "origin", "protocols",
                          "extensions"])

    def test_fail_handshake_signature(self):
        """Autobahn refuses through failHandshake(reason, code, responseHeaders), which chatd.web.ws overrides."""
        self.assertEqual(parameters(WebSocketServerProtocol.failHandshake), ["self", "reason", "code", "responseHeaders"])


class FrameReaderContractTests(OnClockTestCase):
    """chatd.web.speedups.fastframes reads Autobahn's parser state and hands the rest to its private reader."""

    def test_private_reader_and_states(self):
        """``_dataReceived(data)`` exists, and the protocol states are the constants the fast path compares."""
        self.assertEqual(parameters(WebSocketProtocol._dataReceived), ["self", "data"])
        self.assertIsInstance(WebSocketProtocol.STATE_OPEN, int)
        self.assertNotEqual(WebSocketProtocol.STATE_OPEN, WebSocketProtocol.STATE_CONNECTING)

    def test_parser_state_between_frames(self):
        """An open protocol between frames has empty ``data``, no message and no current frame."""
        proto = _Factory(ChatProtocol).protocol()
        proto.onConnect = lambda request: None
        proto.onOpen = lambda: None
        proto.dataReceived(handshake_request(8080, "a.b.c"))
        self.assertEqual(proto.state, WebSocketProtocol.STATE_OPEN)
        self.assertEqual((proto.data, proto.inside_message, proto.current_frame), (b"", False, None))
        self.assertEqual((proto.maxFramePayloadSize, proto.maxMessagePayloadSize), (64 * 1024, 64 * 1024))

    def test_message_end_does_only_what_the_override_does_or_skips(self):
        """Autobahn's onMessageEnd reads no name but the message, its observers, timings and log (which are skipped)."""
        _, read = self_names(WebSocketProtocol.onMessageEnd)
        self.assertEqual(read, {"failedByMe", "message_data", "message_is_binary",  # read by the override too
                                "_onMessage", "fire", "trackedTimings", "log"})  # onMessage, observers, timings


class WriteContractTests(TestCase):
    """chatd.web.speedups.fastwrite reads a plain TCP transport's buffer, on a real loopback connection."""

    async def test_tcp_server_transport_has_the_buffer_the_fast_path_reads(self):
        """tcp.Server has socket, connected, disconnecting, TLS, dataBuffer, offset, _tempDataLen; write counts in _tempDataLen."""
        accepted = defer.Deferred()

        class Server(protocol.Protocol):
            def connectionMade(self):
                accepted.callback(self.transport)

        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(protocol.Factory.forProtocol(Server))
        self.addCleanup(port.stopListening)
        client = await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port), protocol.Protocol())
        self.addCleanup(client.transport.abortConnection)
        transport = await accepted
        self.addCleanup(transport.abortConnection)
        self.assertIs(type(transport), tcp.Server)
        self.assertIsInstance(transport.socket, socket.socket)
        self.assertTrue(transport.connected)
        self.assertFalse(transport.disconnecting)
        self.assertFalse(transport.TLS)
        self.assertEqual((len(transport.dataBuffer), transport.offset, transport._tempDataLen), (0, 0, 0))
        transport.write(b"abc")  # held by Twisted until the next reactor turn
        self.assertEqual(transport._tempDataLen, 3)


class RouterContractTests(TestCase):
    """chatd.web.speedups.router hands a live transport to another protocol."""

    async def test_plain_tcp_delivers_to_the_protocol_switched_in(self):
        """On a real TCP connection, after switch_protocol the new protocol gets connectionMade and every byte."""
        accepted = defer.Deferred()

        class First(protocol.Protocol):
            def connectionMade(self):
                accepted.callback(self.transport)

        class Second(protocol.Protocol):
            received = b""
            made = False

            def connectionMade(self):
                self.made = True

            def dataReceived(self, data):
                self.received += data

        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(protocol.Factory.forProtocol(First))
        self.addCleanup(port.stopListening)
        client = await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port), protocol.Protocol())
        self.addCleanup(client.transport.abortConnection)
        transport = await accepted
        self.addCleanup(transport.abortConnection)
        second = Second()
        switch_protocol(transport, second)
        client.transport.write(b"GET /ws HTTP/1.1\r\n")
        await wait_until(lambda: second.received == b"GET /ws HTTP/1.1\r\n", 5, "the bytes at the new protocol")
        self.assertTrue(second.made)

    def test_tls_is_a_protocol_wrapper_that_delivers_to_wrapped_protocol(self):
        """Twisted's TLS transport is a ProtocolWrapper, and hands what it decrypts to ``wrappedProtocol``."""
        self.assertTrue(issubclass(TLSMemoryBIOProtocol, ProtocolWrapper))
        self.assertIn("wrappedProtocol", self_names(ProtocolWrapper.__init__)[0])
        self.assertIn("wrappedProtocol", self_names(ProtocolWrapper.dataReceived)[1])
        self.assertIn("ProtocolWrapper.dataReceived(self, bytes)", inspect.getsource(TLSMemoryBIOProtocol._flushReceiveBIO))


class AutobahnTuningContractTests(OnClockTestCase):
    """chatd.web.speedups.autobahn_tuning replaces module-level formatters and empties CONFIG_ATTRS."""

    def test_the_formatters_it_replaces_are_autobahns(self):
        """Each module still calls the very pformat/hltype/hlval the stand-ins are made from."""
        self.assertFalse(autobahn_tuning.installed(), "installed by a test that did not clean up")
        self.assertIs(websocket_protocol.pformat, pformat)
        self.assertIs(websocket_protocol.hltype, hltype)
        self.assertIs(websocket_protocol.hlval, hlval)
        self.assertIs(twisted_websocket.hltype, hltype)
        self.assertIs(twisted_websocket.hlval, hlval)

    def test_options_are_copied_only_from_config_attrs(self):
        """``_connectionMade`` copies the names in CONFIG_ATTRS, and no other module of Autobahn reads that list."""
        self.assertIn("CONFIG_ATTRS", self_names(WebSocketProtocol._connectionMade)[1])
        self.assertTrue(all(isinstance(name, str) for name in WebSocketServerProtocol.CONFIG_ATTRS))
        package = os.path.dirname(os.path.dirname(websocket_protocol.__file__))
        readers = []
        for directory, _, files in os.walk(package):
            for name in files:
                if name.endswith(".py") and "test" not in directory:
                    with open(os.path.join(directory, name), encoding="utf-8") as f:
                        if "CONFIG_ATTRS" in f.read():
                            readers.append(os.path.relpath(os.path.join(directory, name), package))
        self.assertEqual(readers, [os.path.join("websocket", "protocol.py")])

    def test_options_on_the_class_are_read_by_the_protocol(self):
        """With the options as class attributes, a connected protocol holds none itself and reads the factory's."""
        factory = _Factory(ChatProtocol).real
        tuned = autobahn_tuning.protocol_with_options(factory, FastChatProtocol)
        proto = tuned()
        proto.factory = factory
        proto.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000)))
        self.assertFalse(set(WebSocketServerProtocol.CONFIG_ATTRS) & set(vars(proto)))
        self.assertEqual(proto.maxMessagePayloadSize, factory.maxMessagePayloadSize)
        self.assertIsNone(proto.perMessageCompressionAccept([]))


class JwtContractTests(SynchronousTestCase):
    """chatd.web.speedups.jwt_hs256 overrides HMACAlgorithm.prepare_key and PyJWS._decode_base64url_segment."""

    def test_hmac_algorithm(self):
        """HMACAlgorithm(hash) with SHA256, and prepare_key(key)."""
        self.assertTrue(callable(HMACAlgorithm.SHA256))
        self.assertEqual(parameters(HMACAlgorithm.__init__), ["self", "hash_alg"])
        self.assertEqual(parameters(HMACAlgorithm.prepare_key), ["self", "key"])

    def test_jws_registry_and_segment_decoder(self):
        """PyJWS(algorithms=...), register_algorithm(id, obj), and a static _decode_base64url_segment(segment, name) called by _load."""
        self.assertIn("algorithms", parameters(PyJWS.__init__))
        self.assertEqual(parameters(PyJWS.register_algorithm), ["self", "alg_id", "alg_obj"])
        self.assertIsInstance(inspect.getattr_static(PyJWS, "_decode_base64url_segment"), staticmethod)
        self.assertEqual(parameters(PyJWS._decode_base64url_segment), ["segment", "name"])
        self.assertIn("_decode_base64url_segment", self_names(PyJWS._load)[1])

    def test_the_overrides_are_called(self):
        """Verifying a token calls the segment decoder three times and checks the secret once for many tokens."""
        import jwt

        token = jwt.encode({"sub": "u1"}, SECRET, algorithm="HS256")
        segments, keys = [], []

        # A subclass spies on the segment decoder: patching the class itself would put back a plain
        # function, not the staticmethod, and break every verifier after this test.
        class Spy(jwt_hs256._JWS):
            @staticmethod
            def _decode_base64url_segment(segment, name):
                segments.append(name)
                return jwt_hs256._JWS._decode_base64url_segment(segment, name)

        verifier = Spy(algorithms=[])
        verifier.register_algorithm("HS256", jwt_hs256._OneSecretHS256())
        self.patch(HMACAlgorithm, "prepare_key", lambda algorithm, key: keys.append(key) or key)
        for _ in range(3):
            self.assertEqual(verifier.decode(token, SECRET, algorithms=["HS256"]), b'{"sub":"u1"}')
        self.assertEqual(segments, ["header", "payload", "crypto"] * 3)
        self.assertEqual(keys, [SECRET])


class AlwaysOnContractTests(SynchronousTestCase):
    """chatd.web.ws (plain or fast) reads a few of Autobahn's internals too: ping counting, refusals, closes."""

    def test_control_frames_and_closes(self):
        """processControlFrame reads current_frame.opcode, control_frame_data and autoPingPending; closes take these arguments."""
        _, read = self_names(WebSocketProtocol.processControlFrame)
        self.assertLessEqual({"current_frame", "control_frame_data", "autoPingPending"}, read)
        self.assertEqual(parameters(WebSocketProtocol.sendCloseFrame)[:4], ["self", "code", "reasonUtf8", "isReply"])
        self.assertIn("abort", parameters(WebSocketProtocol.dropConnection))
        self.assertIn("wasNotCleanReason", self_names(WebSocketProtocol.dropConnection)[1]
                      | self_names(WebSocketProtocol._connectionLost)[1])
