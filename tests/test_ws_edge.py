"""Unit tests for chatd.web.ws at its edge, on a StringTransport with a Clock (issue 9): no status page or
redirect, handshake refusals that repeat nothing the client sent, bounded handshake heads, pings counted
against the socket's rate, and Autobahn's own writes (pongs, close frames) through the bounded outbox.

Each class runs twice: on the plain protocol (``CHATD_SPEEDUPS=0``) and, as ``Fast…``, with the speed-ups
installed by their service (issue 10): what is security holds either way."""

from __future__ import annotations

import json
import os
import struct
from datetime import datetime, timezone

import txaio
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver, StringTransport
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from chatd import errors
from chatd.accounts.auth import Principal
from chatd.accounts.tokens import Claims, TokenIssuer
from chatd.chat.admission import Admission, SocketLimits
from chatd.ratelimit import Rate
from chatd.storage.records import UserRecord
from chatd.web.cors import OriginPolicy
from chatd.web.speedups import FastChatProtocol, Speedups
from chatd.web.ws import MAX_HANDSHAKE, OUTBOX_LIMIT, ChatFactory
from tests.chatharness import START, ChatHarness
from tests.wsclient import handshake_request

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2VjcmV0LXNpZ25hdHVyZS1vZi10aGUtdG9rZW4"
SIGNATURE = TOKEN.split(".")[2]


class _Accounts:
    """Accounts.authenticate: TOKEN is alice's; ``hold`` makes the next answer wait for the test."""

    def __init__(self) -> None:
        self.held: Deferred | None = None
        self.hold = False

    def authenticate(self, token):
        if token != TOKEN:
            return fail(errors.unauthorized())
        user = UserRecord("u1", "alice", "alice@example.com", "user", datetime(2024, 1, 1, tzinfo=timezone.utc), b"h")
        principal = Principal(user, Claims("u1", "alice", "user", START, START + 3600, "j1"))
        if self.hold:
            self.held = Deferred()
            self.held.addCallback(lambda _: principal)
            return self.held
        return succeed(principal)


class _Transport(StringTransport):
    """A StringTransport that, like Twisted's TCP transports, lets a producer be unregistered when none is."""

    def unregisterProducer(self):
        if self.producer is not None:
            super().unregisterProducer()


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked frame as a client sends it."""
    mask = os.urandom(4)
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of each unmasked server frame in ``data``."""
    frames, at = [], 0
    while at < len(data):
        opcode, length, head = data[at] & 0x0F, data[at + 1] & 0x7F, 2
        if length == 126:
            length, head = struct.unpack("!H", data[at + 2:at + 4])[0], 4
        frames.append((opcode, data[at + head:at + head + length]))
        at += head + length
    return frames


class EdgeTestCase(SynchronousTestCase):
    socket_rate = Rate(1, 3)
    limits = SocketLimits()
    speedups = False  # True: the same tests with chatd.web.speedups installed

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(START)
        self.patch(txaio.config, "loop", self.clock)  # Autobahn's timers run on the test's clock
        self.events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.harness = ChatHarness(self.clock, socket_rate=self.socket_rate)
        self.chat = self.harness.dispatcher
        self.accounts = _Accounts()
        self.refusals = []
        self.factory = ChatFactory(self.chat, self.accounts, OriginPolicy(),
                                   Admission(self.limits, self.clock, self.refusals.append), self.harness.metrics,
                                   auto_ping=20)
        if self.speedups:
            service = Speedups(True, self.clock, None, self.factory, TokenIssuer(self.clock, 3600, b"s" * 32))
            service.startService()
            self.addCleanup(service.stopService)
            self.assertTrue(issubclass(self.factory.protocol, FastChatProtocol))

    def connect(self, *chunks: bytes):
        protocol = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        transport = _Transport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        protocol.makeConnection(transport)
        for chunk in chunks:
            protocol.dataReceived(chunk)
        return protocol, transport

    def open(self):
        """An open socket past its hello, with the transport's output cleared."""
        protocol, transport = self.connect(handshake_request(8080, TOKEN))
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 101 "), transport.value()[:200])
        transport.clear()
        return protocol, transport

    def logged(self) -> str:
        """Every logged event, formatted and as its raw fields."""
        return "\n".join(f"{formatEvent(event)} {event!r}" for event in self.events)

    @staticmethod
    def answer(transport) -> tuple[bytes, str, dict]:
        head, _, body = transport.value().partition(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        return status, head.decode("latin-1").lower(), json.loads(body) if status != b"101" else {}


class StatusPageTests(EdgeTestCase):
    def test_plain_get_is_a_short_426(self):
        """GET /ws without an upgrade: 426 with SPEC.md's error body; no page, no version, no redirect, no traceback."""
        for query in ["", "?redirect=https://evil.example/phish", "?redirect=//evil.example",
                      "?redirect=https://evil.example/&after=x", "?redirect=https://evil.example/&after=3"]:
            with self.subTest(query=query):
                _, transport = self.connect(f"GET /ws{query} HTTP/1.1\r\nHost: chat.example\r\n\r\n".encode())
                status, head, body = self.answer(transport)
                self.assertEqual((status, body["error"]["code"]), (b"426", "invalid_request"))
                self.assertIn("\r\nupgrade: websocket", head)
                self.assertNotIn(b"evil", transport.value())
                self.assertNotIn(b"autobahn", transport.value().lower())
                self.assertTrue(transport.disconnecting)
        self.assertNotIn("Traceback", self.logged())
        self.assertFalse([event for event in self.events if "log_failure" in event])


class RefusalTests(EdgeTestCase):
    def test_unparsable_request_line_is_not_echoed_or_logged(self):
        """A space in the query (``client=my laptop``) is 400; neither the answer nor any log event holds the token."""
        request = handshake_request(8080, TOKEN).replace(b" HTTP/1.1", b"&client=my laptop HTTP/1.1", 1)
        _, transport = self.connect(request)
        status, head, body = self.answer(transport)
        self.assertEqual((status, body["error"]["code"]), (b"400", "invalid_request"))
        self.assertNotIn(SIGNATURE.encode(), transport.value())
        self.assertNotIn(b"laptop", transport.value())
        self.assertTrue(self.events, "the refusal is logged")
        self.assertNotIn(SIGNATURE, self.logged())
        self.assertNotIn("laptop", self.logged())

    def test_refusals_answer_spec_errors_from_chatd(self):
        """A bad token is 401 with WWW-Authenticate; every refusal names chatd, no library, and forbids sniffing."""
        _, transport = self.connect(handshake_request(8080, "not-the-token"))
        status, head, body = self.answer(transport)
        self.assertEqual((status, body["error"]["code"]), (b"401", "unauthorized"))
        self.assertIn("\r\nwww-authenticate: bearer", head)
        self.assertIn("\r\nserver: chatd\r\n", head)
        self.assertIn("\r\nx-content-type-options: nosniff", head)
        self.assertNotIn("autobahn", head)

    def test_other_versions_are_told_13(self):
        """Only RFC 6455 (version 13) is spoken; a version 8 client is told so."""
        _, transport = self.connect(handshake_request(8080, TOKEN).replace(b"Version: 13", b"Version: 8"))
        status, head, _ = self.answer(transport)
        self.assertEqual(status, b"400")
        self.assertIn("\r\nsec-websocket-version: 13", head)

    def test_accepted_handshake_names_chatd(self):
        """The 101 says Server: chatd, without a version."""
        _, transport = self.connect(handshake_request(8080, TOKEN))
        status, head, _ = self.answer(transport)
        self.assertEqual(status, b"101")
        self.assertIn("\r\nserver: chatd\r\n", head)


class HandshakeBoundTests(EdgeTestCase):
    def test_head_without_its_end_is_refused_past_16_kib(self):
        """Header bytes that never end are refused with 431 once past 16 KiB, not kept until a timeout."""
        start = b"GET /ws?token=x HTTP/1.1\r\nHost: chat.example\r\nX-Pad: "
        protocol, transport = self.connect(start)
        for _ in range((MAX_HANDSHAKE - len(start)) // 1024):
            protocol.dataReceived(b"p" * 1024)
        self.assertEqual(transport.value(), b"")
        protocol.dataReceived(b"p" * 1024)
        self.assertEqual(self.answer(transport)[0], b"431")
        self.assertTrue(transport.disconnecting)
        protocol.dataReceived(b"p" * 100_000)
        self.assertLess(len(protocol.data), MAX_HANDSHAKE + 110_000)  # what comes after is not parsed again

    def test_complete_but_oversized_head_is_refused(self):
        """A head that does end, but past 16 KiB, is refused too."""
        request = handshake_request(8080, TOKEN, extra="X-Pad: " + "p" * MAX_HANDSHAKE + "\r\n")
        _, transport = self.connect(request)
        self.assertEqual(self.answer(transport)[0], b"431")

    def test_bytes_sent_while_the_token_is_checked_are_bounded(self):
        """While onConnect decides, what follows the head is held up to the bound; past it, 431 and no socket later."""
        self.accounts.hold = True
        protocol, transport = self.connect(handshake_request(8080, TOKEN))
        protocol.dataReceived(client_frame(1, b"x" * 100) * 100)
        self.assertEqual(transport.value(), b"")
        protocol.dataReceived(b"y" * MAX_HANDSHAKE)
        self.assertEqual(self.answer(transport)[0], b"431")
        transport.clear()
        self.accounts.held.callback(None)
        self.assertEqual(transport.value(), b"")  # no 101 after the refusal
        self.assertEqual(self.harness.registry.connection_count(), 0)


class PingTests(EdgeTestCase):
    """Rate 1/s with a burst of 3 here."""

    def test_pings_are_counted_like_frames(self):
        """Pings within the budget are answered; past it they are refused (rate_limited) and flooding closes 1008."""
        protocol, transport = self.open()
        protocol.dataReceived(client_frame(9, b"a") * 3)
        self.assertEqual(server_frames(transport.value()), [(10, b"a")] * 3)
        transport.clear()
        protocol.dataReceived(client_frame(9, b"b"))
        [(opcode, payload)] = server_frames(transport.value())
        self.assertEqual((opcode, json.loads(payload)["code"]), (1, "rate_limited"))
        transport.clear()
        protocol.dataReceived(client_frame(9, b"c") * 10)
        opcodes = [opcode for opcode, _ in server_frames(transport.value())]
        self.assertNotIn(10, opcodes)
        self.assertEqual(opcodes[-1], 8)
        self.assertEqual(struct.unpack("!H", server_frames(transport.value())[-1][1][:2])[0], 1008)

    def test_unsolicited_pongs_are_not_logged(self):
        """A pong that answers no ping of ours is dropped quietly (Autobahn would warn for each)."""
        protocol, transport = self.open()
        self.clock.advance(20)  # our auto-ping goes out and waits for its pong
        self.assertEqual(server_frames(transport.value())[0][0], 9)
        before = len(self.events)
        protocol.dataReceived(client_frame(10, b"not yours"))
        self.assertEqual(len(self.events), before)


class UnlimitedPingTests(EdgeTestCase):
    socket_rate = Rate(0, 0)  # no rate limit: only the outbox bounds what a non-reader costs

    def test_pongs_wait_behind_frames_for_a_peer_that_does_not_read(self):
        """While the transport is paused, pongs queue in the outbox in order, and go out when it drains."""
        protocol, transport = self.open()
        outbox = transport.producer
        outbox.pauseProducing()  # what Twisted does when its write buffer fills
        protocol.send(b'{"type":"first"}')
        protocol.dataReceived(client_frame(9, b"p1"))
        self.assertEqual(transport.value(), b"")
        outbox.resumeProducing()
        frames = server_frames(transport.value())
        self.assertEqual([opcode for opcode, _ in frames], [1, 10])
        self.assertEqual(frames[1][1], b"p1")

    def test_unread_pongs_close_the_socket_4008(self):
        """Pongs to a peer that reads nothing fill the outbox to its bound; then the socket is closed with 4008."""
        protocol, transport = self.open()
        transport.producer.pauseProducing()
        ping = client_frame(9, b"p" * 125)
        for _ in range(OUTBOX_LIMIT // 127 + 10):
            protocol.dataReceived(ping)
        self.assertEqual(self.chat.slow_consumers, 1)
        frames = server_frames(transport.value())
        self.assertEqual([opcode for opcode, _ in frames], [8])  # only the close frame: the backlog was dropped
        self.assertEqual(struct.unpack("!H", frames[0][1][:2])[0], 4008)
        self.assertLessEqual(self.harness.metrics.largest_outbox, OUTBOX_LIMIT + 127)


class FastStatusPageTests(StatusPageTests):
    """StatusPageTests with the speed-ups installed."""

    speedups = True


class FastRefusalTests(RefusalTests):
    """RefusalTests with the speed-ups installed."""

    speedups = True


class FastHandshakeBoundTests(HandshakeBoundTests):
    """HandshakeBoundTests with the speed-ups installed."""

    speedups = True


class FastPingTests(PingTests):
    """PingTests with the speed-ups installed."""

    speedups = True


class FastUnlimitedPingTests(UnlimitedPingTests):
    """UnlimitedPingTests with the speed-ups installed."""

    speedups = True
