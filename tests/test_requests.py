"""Unit tests for chatd.web.requests on a real HTTPChannel (StringTransport, Clock): bounded bodies, uploads
checked before their body is read, deadlines and timeouts, and the headers every response carries."""

from __future__ import annotations

from datetime import datetime, timezone

import json
from types import SimpleNamespace

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from chatd import errors
from chatd.files.uploads import Files
from chatd.storage.memory import MemoryStore
from chatd.web.api.files import UploadGate
from chatd.rooms.access import RoomAccess
from chatd.web.cors import OriginPolicy
from chatd.web.requests import HELD_LIMIT, ChatdRequest, request_line
from chatd.web.site import CountingSite
from tests.test_multipart import CTYPE, body

UPLOAD_PATH = b"/api/rooms/lobby/files"


class _Recorder(Resource):
    """Answers every request with 200 and keeps what it was given."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.requests: list = []

    def render(self, request):
        request.content.seek(0)
        self.requests.append((request.method, request.path, request.content.read(), dict(request.args)))
        return b"ok"


class _Accounts:
    """Accounts.authenticate with answers the test gives: ``pending`` holds (token, Deferred)."""

    def __init__(self) -> None:
        self.pending: list[tuple[str | None, Deferred]] = []

    def authenticate(self, token):
        if token is None:
            return fail(errors.unauthorized())
        answer: Deferred = Deferred()
        self.pending.append((token, answer))
        return answer

    def answer(self, rooms=("lobby",)) -> None:
        self.pending.pop(0)[1].callback(SimpleNamespace(user=SimpleNamespace(id="u1", role="user", rooms=list(rooms))))


def _files(clock) -> Files:
    """Files whose access rule finds u1 a member of the lobby (in the store, as the rule asks)."""
    store = MemoryStore()
    store.add_membership("lobby", "u1", datetime(2024, 1, 1, tzinfo=timezone.utc), 0)
    return Files(store, None, clock, 10_000, RoomAccess(store))


class _Metrics:
    def __init__(self) -> None:
        self.counted: list = []

    def http_request(self, path, status) -> None:
        self.counted.append((path, status))


def _head(method: bytes, path: bytes, length: int | None, *extra: bytes) -> bytes:
    lines = [method + b" " + path + b" HTTP/1.1", b"Host: chat.example"]
    if length is not None:
        lines.append(b"Content-Length: %d" % length)
    return b"\r\n".join(lines + list(extra)) + b"\r\n\r\n"


class ChannelTestCase(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.resource = _Recorder()
        self.accounts = _Accounts()
        self.metrics = _Metrics()
        self.site = CountingSite(self.resource, self.metrics, max_body=10_000, small_body=1000,
                                 gate=UploadGate(self.accounts, _files(self.clock), OriginPolicy()), reactor=self.clock)
        self.site.startFactory()  # the access log (to Twisted's log) and its clock
        self.addCleanup(self.site.stopFactory)

    def connect(self):
        channel = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        channel.makeConnection(transport)
        return channel, transport

    def send(self, *chunks: bytes):
        channel, transport = self.connect()
        for chunk in chunks:
            channel.dataReceived(chunk)
        return channel, transport

    def status(self, transport) -> bytes:
        return transport.value().split(b" ", 2)[1]

    def error_code(self, transport) -> str:
        return json.loads(transport.value().partition(b"\r\n\r\n")[2])["error"]["code"]


class BodyLimitTests(ChannelTestCase):
    def test_request_line_is_known_when_the_length_is(self):
        """The method and URI Twisted keeps on the channel are there when the body's length is read."""
        seen = []

        class Recording(ChatdRequest):
            def gotLength(self, length):
                seen.append(request_line(self.channel))
                super().gotLength(length)

        self.site.requestFactory = Recording
        self.send(_head(b"POST", b"/api/auth/login?x=1", 2), b"{}")
        self.assertEqual(seen, [(b"POST", b"/api/auth/login?x=1", b"HTTP/1.1")])

    def test_json_body_over_64_kib_is_refused_at_once(self):
        """A declared length over the small-body limit is 413 at once and the connection closes; nothing is handled."""
        _, transport = self.send(_head(b"POST", b"/api/auth/login", 1001))
        self.assertEqual((self.status(transport), self.error_code(transport)), (b"413", "too_large"))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.resource.requests, [])
        self.assertEqual(self.metrics.counted, [("/api/auth/login", 413)])

    def test_chunked_body_is_refused_once_past_the_limit(self):
        """A chunked body is refused as soon as it passes the limit; what came before it is not handled."""
        channel, transport = self.send(_head(b"POST", b"/api/auth/login", None, b"Transfer-Encoding: chunked"))
        channel.dataReceived(b"258\r\n" + b"z" * 600 + b"\r\n")
        self.assertEqual(transport.value(), b"")
        channel.dataReceived(b"258\r\n" + b"z" * 600 + b"\r\n0\r\n\r\n")
        self.assertEqual(self.status(transport), b"413")
        self.assertEqual(self.resource.requests, [])

    def test_within_the_limit_is_kept(self):
        """A body up to the limit reaches the resource whole."""
        _, transport = self.send(_head(b"POST", b"/api/auth/login", 1000), b"k" * 1000)
        self.assertEqual(self.resource.requests, [(b"POST", b"/api/auth/login", b"k" * 1000, {})])

    def test_uploads_may_be_larger_but_not_past_max_body(self):
        """An upload may declare up to max_body; past it, 413 comes before anyone checks the token."""
        _, transport = self.send(_head(b"POST", UPLOAD_PATH, 10_001, b"Authorization: Bearer t"))
        self.assertEqual(self.status(transport), b"413")
        self.assertEqual(self.accounts.pending, [])

    def test_only_the_upload_route_is_an_upload(self):
        """Lookalike paths and other methods get the small-body limit."""
        for method, path in [(b"PUT", UPLOAD_PATH), (b"POST", UPLOAD_PATH + b"/"), (b"POST", b"/api/rooms/files"),
                             (b"POST", b"/api/rooms/a/b/files"), (b"POST", b"/x/api/rooms/lobby/files")]:
            with self.subTest(method=method, path=path):
                _, transport = self.send(_head(method, path, 5000, b"Authorization: Bearer t"))
                self.assertEqual(self.status(transport), b"413")
        self.assertEqual(self.accounts.pending, [])


class UploadGateTests(ChannelTestCase):
    def _upload(self, data: bytes, token: bytes | None = b"t", path: bytes = UPLOAD_PATH, *extra: bytes):
        headers = [b"Content-Type: " + CTYPE.encode()] + list(extra)
        if token:
            headers.append(b"Authorization: Bearer " + token)
        return _head(b"POST", path, len(data), *headers)

    def test_body_waits_for_the_check_with_reading_paused(self):
        """Until the token and membership are checked, the socket is paused and no body is stored anywhere."""
        raw = body((b'form-data; name="file"; filename="a.bin"', b"x" * 5000))
        channel, transport = self.send(self._upload(raw) + raw[:100])
        self.assertEqual(transport.producerState, "paused")
        request = channel.requests[0]
        self.assertIsNone(request.content)  # no temporary file, no buffer: only what came with the head
        self.assertEqual([token for token, _ in self.accounts.pending], ["t"])
        self.accounts.answer()
        self.assertEqual(transport.producerState, "producing")
        channel.dataReceived(raw[100:])
        self.assertEqual(self.resource.requests, [(b"POST", UPLOAD_PATH, raw, {})])  # multipart not parsed to args

    def test_body_that_came_whole_with_the_head_is_handled_once_admitted(self):
        """A small upload whose bytes all came with its head is handled when the check passes, not before."""
        raw = body((b'form-data; name="file"; filename="a.txt"', b"hi"))
        self.send(self._upload(raw) + raw)
        self.assertEqual(self.resource.requests, [])
        self.accounts.answer()
        self.assertEqual(self.resource.requests, [(b"POST", UPLOAD_PATH, raw, {})])

    def test_without_a_token_401_before_the_body(self):
        """No token: 401 with WWW-Authenticate at once; the connection closes and the body is never stored."""
        channel, transport = self.send(self._upload(b"x" * 9000, token=None) + b"x" * 100)
        self.assertEqual((self.status(transport), self.error_code(transport)), (b"401", "unauthorized"))
        self.assertIn(b"WWW-Authenticate: Bearer", transport.value())
        self.assertTrue(transport.disconnecting)
        channel.dataReceived(b"x" * 8900)
        self.assertEqual(channel.requests[0].content.getvalue(), b"")
        self.assertEqual(self.resource.requests, [])
        self.assertEqual(self.metrics.counted, [(UPLOAD_PATH.decode(), 401)])

    def test_refusals_as_the_route_gives_them(self):
        """A bad token is 401, a banned user 403, a malformed room 404, a room one is not in 403; the store away 503."""
        cases = [
            (UPLOAD_PATH, lambda d: d.errback(errors.unauthorized()), b"401"),
            (UPLOAD_PATH, lambda d: d.errback(errors.forbidden("banned")), b"403"),
            (b"/api/rooms/No%20Such/files", lambda d: d.callback(SimpleNamespace(user=SimpleNamespace(id="u1", role="user", rooms=[]))),
             b"404"),
            (b"/api/rooms/other/files", lambda d: d.callback(SimpleNamespace(user=SimpleNamespace(id="u1", role="user", rooms=["lobby"]))),
             b"403"),
            (UPLOAD_PATH, lambda d: d.errback(errors.unavailable()), b"503"),
        ]
        for path, answer, status in cases:
            with self.subTest(path=path, status=status):
                _, transport = self.send(self._upload(b"x" * 9000, path=path))
                answer(self.accounts.pending.pop(0)[1])
                self.assertEqual(self.status(transport), status)
                self.assertTrue(transport.disconnecting)
        self.assertEqual(self.resource.requests, [])

    def test_refusal_for_a_configured_origin_carries_cors_headers(self):
        """A browser on an allowed origin can read the refusal (the route's answer would carry them too)."""
        self.site.gate = UploadGate(self.accounts, _files(self.clock), OriginPolicy(["https://app.example"]))
        _, transport = self.send(self._upload(b"x" * 10, None, UPLOAD_PATH, b"Origin: https://app.example"))
        self.assertIn(b"Access-Control-Allow-Origin: https://app.example", transport.value())

    def test_expect_continue_only_once_admitted(self):
        """100 Continue is sent after the check passes; a refusal gets its answer and no 100."""
        _, refused = self.send(self._upload(b"x" * 10, None, UPLOAD_PATH, b"Expect: 100-continue"))
        self.assertEqual(self.status(refused), b"401")
        self.assertNotIn(b"100 Continue", refused.value())
        _, transport = self.send(self._upload(b"x" * 10, b"t", UPLOAD_PATH, b"Expect: 100-continue"))
        self.assertEqual(transport.value(), b"")
        self.accounts.answer()
        self.assertEqual(transport.value(), b"HTTP/1.1 100 Continue\r\n\r\n")

    def test_bytes_held_while_checking_are_bounded(self):
        """A client that keeps sending while the check runs (the pause not yet felt) is dropped past the bound."""
        self.site.max_body = 10 * HELD_LIMIT
        channel, transport = self.send(self._upload(b"x" * 5 * HELD_LIMIT))
        channel.dataReceived(b"x" * HELD_LIMIT)
        self.assertFalse(transport.disconnected)
        channel.dataReceived(b"x")
        self.assertTrue(transport.disconnected)

    def test_client_gone_before_the_check_ends(self):
        """If the client leaves while the token is checked, nothing is handled afterwards."""
        channel, transport = self.send(self._upload(b"x" * 10) + b"x" * 10)
        channel.connectionLost(None)
        self.accounts.answer()
        self.assertEqual(self.resource.requests, [])


class TimeoutTests(ChannelTestCase):
    def test_trickled_head_is_dropped_at_the_deadline(self):
        """A head sent a byte every few seconds is dropped 30 s after its first byte, though never idle."""
        channel, transport = self.send(b"G")
        for byte in b"ET / HTTP/1.1\r\nX: ":
            self.clock.advance(2)
            channel.dataReceived(bytes([byte]))
            if self.clock.seconds() >= 30:
                break
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.clock.seconds(), 30)

    def test_trickled_json_body_is_dropped_at_the_deadline(self):
        """The deadline covers a non-upload body as well."""
        channel, transport = self.send(_head(b"POST", b"/api/auth/login", 500))
        for _ in range(14):
            self.clock.advance(2)
            channel.dataReceived(b"{")
        self.assertFalse(transport.disconnecting)
        self.clock.advance(2)
        self.assertTrue(transport.disconnecting)

    def test_authorized_upload_may_take_longer_but_must_keep_moving(self):
        """Once admitted, an upload is not cut at 30 s; a minute without a byte drops it."""
        channel, transport = self.send(_head(b"POST", UPLOAD_PATH, 9000, b"Authorization: Bearer t"))
        self.accounts.answer()
        for _ in range(10):
            self.clock.advance(10)
            channel.dataReceived(b"x" * 10)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(60)
        self.assertTrue(transport.disconnecting)

    def test_silent_connection_is_dropped_after_a_minute(self):
        """An idle connection is dropped after 60 s (Twisted's default would be 12 hours)."""
        _, transport = self.connect()
        self.clock.advance(59)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(1)
        self.assertTrue(transport.disconnecting)

    def test_each_request_has_its_own_deadline(self):
        """On a kept-alive connection the deadline starts with each request's first byte."""
        channel, transport = self.send(_head(b"GET", b"/", None))
        self.assertEqual(len(self.resource.requests), 1)
        self.clock.advance(50)
        channel.dataReceived(b"GET / HT")
        self.clock.advance(29)
        self.assertFalse(transport.disconnecting)
        channel.dataReceived(b"TP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(len(self.resource.requests), 2)
        self.clock.advance(20)
        self.assertFalse(transport.disconnecting)

    def test_deadline_counts_from_bytes_held_before_the_channel(self):
        """When the router held the first bytes for a while, the deadline still ends 30 s after the first of them."""
        channel, transport = self.connect()
        self.clock.advance(20)
        channel.request_began(8)
        channel.dataReceived(b"GET / HT")
        self.clock.advance(17)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(1)
        self.assertTrue(transport.disconnecting)

    def test_overlong_head_line_is_431(self):
        """A header line past 16 KiB is answered 431, not dropped without a word."""
        _, transport = self.send(b"GET / HTTP/1.1\r\nX: " + b"a" * 20_000)
        self.assertEqual(self.status(transport), b"431")
        self.assertTrue(transport.disconnecting)


class HeaderTests(ChannelTestCase):
    def test_every_response_names_chatd_and_forbids_sniffing_and_framing(self):
        """Server: chatd (no version), nosniff and X-Frame-Options: DENY on an ordinary response and on a refusal."""
        _, ok = self.send(_head(b"GET", b"/", None))
        _, refused = self.send(_head(b"POST", b"/api/auth/login", 5000))
        for transport in (ok, refused):
            head = transport.value().partition(b"\r\n\r\n")[0].lower()
            self.assertIn(b"\r\nserver: chatd\r\n", head + b"\r\n")
            self.assertNotIn(b"twisted", head)
            self.assertIn(b"\r\nx-content-type-options: nosniff", head)
            self.assertIn(b"\r\nx-frame-options: deny", head)

