"""The web edge end to end (issue 9): bodies, handshakes, Autobahn's status page, pings and headers, on real sockets."""

from __future__ import annotations

import json
import os
import tempfile
import time

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.interfaces import IPushProducer
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from chatd.ratelimit import Rate
from chatd.web.ws import OUTBOX_LIMIT
from tests.harness import start_server, wait_until
from tests.test_multipart import CTYPE, body
from tests.wsclient import handshake_request, joined

UPLOAD = 26_000_000  # "26 MB": within the default --max-upload of 25 MiB


@implementer(IPushProducer)
class RawClient(protocol.Protocol):
    """Writes a request head, then (optionally) a body of ``body_size`` bytes only as fast as the
    connection takes it, and records what came back and when the server closed."""

    def __init__(self, head: bytes, body_size: int = 0, filler: bytes = b"x") -> None:
        self.head = head
        self.body_left = body_size
        self.filler = filler * 65536
        self.sent_body = 0
        self.response = b""
        self.paused = False
        self.done: defer.Deferred = defer.Deferred()
        self.first_answer_at: float | None = None
        self.closed_at: float | None = None
        self.started = time.monotonic()

    def connectionMade(self) -> None:
        self.transport.registerProducer(self, True)
        self.transport.write(self.head)
        self.resumeProducing()

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        while self.body_left > 0 and not self.paused and self.transport.connected:
            piece = self.filler[:min(len(self.filler), self.body_left)]
            self.body_left -= len(piece)
            self.sent_body += len(piece)
            self.transport.write(piece)

    def stopProducing(self) -> None:
        self.body_left = 0

    def dataReceived(self, data: bytes) -> None:
        if self.first_answer_at is None:
            self.first_answer_at = time.monotonic() - self.started
        self.response += data

    def connectionLost(self, reason) -> None:
        self.closed_at = time.monotonic() - self.started
        self.done.callback(self.response)

    @property
    def status(self) -> bytes:
        return self.response.split(b" ", 2)[1] if self.response.startswith(b"HTTP/1.1 ") else b""

    @property
    def error_code(self) -> str | None:
        """The SPEC.md error code in the (first) response's body."""
        try:
            return json.loads(self.response.partition(b"\r\n\r\n")[2])["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return None

    def headers(self) -> str:
        return self.response.partition(b"\r\n\r\n")[0].decode("latin-1").lower()


async def exchange(port: int, head: bytes, body_size: int = 0, timeout: float = 20.0) -> RawClient:
    """Connect, send ``head`` (and a body), and wait until the server has closed the connection."""
    client = RawClient(head, body_size)
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), client)
    try:
        await client.done.addTimeout(timeout, reactor)
    except defer.TimeoutError:
        client.transport.abortConnection()
        raise AssertionError(f"the server kept the connection open for {timeout}s; got {client.response[:300]!r}")
    return client


class _CountingTemporaryFiles:
    """Stands in for tempfile.TemporaryFile (where Twisted spools a large body) and counts the files made."""

    def __init__(self, original) -> None:
        self.original = original
        self.made = 0

    def __call__(self, *args, **kwargs):
        self.made += 1
        return self.original(*args, **kwargs)


class BodyTests(TestCase):
    timeout = 90

    async def setUp(self):
        self.server = await start_server(self)
        self.http = self.server.client()
        self.alice = await self.http.register("alice")
        self.mallory = await self.http.register("mallory")  # never joins
        self.socket = await joined(self.server.url, self.alice["token"], test=self)
        self.spooled = _CountingTemporaryFiles(tempfile.TemporaryFile)
        self.patch(tempfile, "TemporaryFile", self.spooled)

    def _upload_head(self, token: str | None, size: int, room: str = "lobby", extra: str = "") -> bytes:
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        return (f"POST /api/rooms/{room}/files HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: {CTYPE}\r\n"
                f"Content-Length: {size}\r\n{extra}\r\n").encode()

    async def test_unauthenticated_upload_is_refused_before_its_body_is_read(self):
        """A 26 MB upload without a token gets 401 at once; the server reads almost none of it and spools nothing."""
        client = await exchange(self.server.port, self._upload_head(None, UPLOAD), UPLOAD)
        self.assertEqual(client.status, b"401", client.response[:300])
        self.assertEqual(client.error_code, "unauthorized")
        self.assertIn("www-authenticate: bearer", client.headers())
        self.assertLess(client.first_answer_at, 5)
        # What the client managed to hand over is what the kernel buffers hold, not the upload.
        self.assertLess(client.sent_body, UPLOAD // 4)
        self.assertEqual(self.spooled.made, 0)

    async def test_non_member_upload_is_refused_before_its_body_is_read(self):
        """A member of nothing uploading to a room gets 403; a malformed room 404; neither body is stored."""
        client = await exchange(self.server.port, self._upload_head(self.mallory["token"], UPLOAD), UPLOAD)
        self.assertEqual(client.status, b"403", client.response[:300])
        self.assertLess(client.sent_body, UPLOAD // 4)
        client = await exchange(self.server.port, self._upload_head(self.alice["token"], UPLOAD, room="No%20Such"),
                                UPLOAD)
        self.assertEqual(client.status, b"404", client.response[:300])
        self.assertEqual(self.spooled.made, 0)
        await self.socket.none("message")

    async def test_expect_continue_is_answered_only_once_authorized(self):
        """A client that waits for 100 Continue (curl does, for large files) hears it only after the token is checked."""
        refused = await exchange(self.server.port, self._upload_head(None, UPLOAD, extra="Expect: 100-continue\r\n"))
        self.assertEqual(refused.status, b"401")
        self.assertNotIn(b"100 Continue", refused.response)
        raw = body((b'form-data; name="file"; filename="a.txt"', b"hello"))
        client = RawClient(self._upload_head(self.alice["token"], len(raw), extra="Expect: 100-continue\r\n"))
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.server.port), client)
        await wait_until(lambda: client.response, 5, "an interim answer")
        self.assertTrue(client.response.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), client.response)
        client.transport.write(raw)
        await wait_until(lambda: b"HTTP/1.1 201" in client.response, 10, "the upload to be stored")
        client.transport.loseConnection()
        await client.done

    async def test_large_json_body_is_refused_at_once(self):
        """A 100 KiB body to a JSON route is 413 as soon as its length is read, without the body being sent."""
        head = (b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 102400\r\n\r\n")
        client = await exchange(self.server.port, head)
        self.assertEqual(client.status, b"413", client.response[:300])
        self.assertEqual(client.error_code, "too_large")
        self.assertLess(client.closed_at, 5)
        self.assertEqual(self.spooled.made, 0)

    async def test_chunked_json_body_is_cut_off_past_64_kib(self):
        """A chunked body to a JSON route is 413 as soon as it passes 64 KiB."""
        head = (b"POST /api/auth/register HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (16384, b" " * 16384)
        client = await exchange(self.server.port, head + chunk * 5)
        self.assertEqual(client.status, b"413", client.response[:300])

    async def test_trickling_client_is_dropped_by_the_deadline(self):
        """A request head sent a byte every half second is dropped when the request deadline (30 s by default,
        3 s on this server) has passed since it began, though the connection was never idle."""
        server = await start_server(self, request_deadline=3.0)
        client = RawClient(b"")
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", server.port), client)
        head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100
        for byte in head[:40]:
            if client.closed_at is not None:
                break
            client.transport.write(bytes([byte]))
            await _sleep(0.5)
        self.assertIsNotNone(client.closed_at, "still connected after 20 s of trickling")
        self.assertTrue(2.9 <= client.closed_at <= 5, client.closed_at)


async def _sleep(seconds: float) -> None:
    d: defer.Deferred = defer.Deferred()
    reactor.callLater(seconds, d.callback, None)
    await d


class SocketEndpointTests(TestCase):
    timeout = 60

    async def setUp(self):
        self.server = await start_server(self)
        self.http = self.server.client()
        self.alice = await self.http.register("alice")

    async def _plain_get(self, path: str, before: bytes = b"") -> RawClient:
        head = before + f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        return await exchange(self.server.port, head)

    def _assert_short_refusal(self, client: RawClient) -> None:
        text = client.response.decode("latin-1")
        self.assertIn(client.status, (b"400", b"426"), text[:300])
        self.assertNotIn("location:", client.headers())
        self.assertNotIn("evil.example", text)
        self.assertNotIn("autobahn", text.lower())
        self.assertNotIn("<html", text.lower())

    async def test_plain_get_of_the_socket_is_a_short_error(self):
        """GET /ws without an upgrade is refused briefly: no status page, no version, no redirect (either path to it)."""
        before = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        for path in ["/ws", "/ws?redirect=https://evil.example/phish", "/ws?redirect=//evil.example",
                     "/ws?redirect=https://evil.example/&after=x", "/ws?redirect=https://evil.example/&after=1"]:
            for prefix in (b"", before):
                with self.subTest(path=path, kept_alive=bool(prefix)):
                    client = await self._plain_get(path, prefix)
                    if prefix:
                        self.assertTrue(client.response.startswith(b"HTTP/1.1 200"), client.response[:100])
                        client.response = client.response[client.response.index(b"HTTP/1.1 ", 10):]
                    self._assert_short_refusal(client)

    async def test_unparsable_request_line_is_not_echoed(self):
        """A request line with a space in its query is refused without repeating the token in the answer."""
        token = self.alice["token"]
        request = handshake_request(self.server.port, token).replace(b" HTTP/1.1", b"&client=my laptop HTTP/1.1", 1)
        client = await exchange(self.server.port, request)
        self.assertEqual(client.status, b"400", client.response[:300])
        self.assertNotIn(token.split(".")[2].encode(), client.response)
        self.assertNotIn(b"laptop", client.response)

    async def test_endless_handshake_head_is_refused(self):
        """A handshake whose head passes 16 KiB without its blank line is answered 431 and closed at once."""
        for path in ("/ws?token=x", "/api/users"):
            with self.subTest(path=path):
                head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n".encode()
                client = await exchange(self.server.port, head + b"X-Padding: " + b"p" * 1024 * 1024, timeout=8)
                self.assertIn(client.status, (b"431", b"400"), client.response[:300])
                self.assertLess(client.closed_at, 5)

    async def test_no_version_in_server_headers(self):
        """Every answer says ``Server: chatd`` and carries nosniff and DENY framing; none names Twisted or Autobahn."""
        answers = [await self._plain_get(path) for path in ("/healthz", "/", "/nothing-here", "/api/users", "/ws")]
        upgrade = await exchange(self.server.port, handshake_request(self.server.port, "bad"))
        for client in answers + [upgrade]:
            with self.subTest(response=client.response[:40]):
                headers = client.headers()
                self.assertIn("server: chatd\r\n", headers + "\r\n")
                self.assertNotIn("twisted", headers)
                self.assertNotIn("autobahn", headers)
                self.assertIn("x-content-type-options: nosniff", headers)
                self.assertIn("x-frame-options: deny", headers)
        accepted = RawClient(handshake_request(self.server.port, self.alice["token"]))
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.server.port), accepted)
        await wait_until(lambda: b"\r\n\r\n" in accepted.response, 5, "the 101")
        self.assertEqual(accepted.status, b"101")
        self.assertIn("server: chatd\r\n", accepted.headers() + "\r\n")
        accepted.transport.abortConnection()
        await accepted.done


def _ping(payload: bytes) -> bytes:
    """A masked client ping frame."""
    mask = os.urandom(4)
    return bytes([0x89, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class _PingFlood(protocol.Protocol):
    """Opens a socket, then sends pings as fast as it can and never reads what comes back."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.buffer = b""
        self.upgraded: defer.Deferred = defer.Deferred()
        self.closed: defer.Deferred = defer.Deferred()
        self.flooding = True

    def connectionMade(self) -> None:
        self.transport.write(self.request)

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded.called and b"\r\n\r\n" in self.buffer:
            self.transport.pauseProducing()  # from now on nothing is read: the server's answers pile up
            self.upgraded.callback(self.buffer.split(b" ", 2)[1])

    def flood(self, frame: bytes) -> None:
        if not self.flooding or not self.transport.connected:
            return
        if len(self.transport.dataBuffer) - self.transport.offset < 1024 * 1024:  # what the kernel does not take waits
            self.transport.write(frame * 256)
        reactor.callLater(0.001, self.flood, frame)

    def connectionLost(self, reason) -> None:
        self.flooding = False
        self.closed.callback(None)


class PingTests(TestCase):
    timeout = 60

    async def _flood(self, server, payload: bytes) -> None:
        session = await server.client().register("flooder")
        flood = _PingFlood(handshake_request(server.port, session["token"]))
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", server.port), flood)
        self.assertEqual(await flood.upgraded.addTimeout(5, reactor), b"101")
        chat, registry = server.service.chat, server.service.registry
        await wait_until(lambda: registry.connections(), 5, "the socket to be registered")
        flood.flood(_ping(payload))
        await wait_until(lambda: not list(registry.connections()), 20, "the server to close the flooding socket")
        flood.flooding = False
        flood.transport.abortConnection()
        await flood.closed
        return chat

    async def test_ping_flood_is_closed_by_the_rate_limit(self):
        """Pings count against --socket-rate: a socket flooding them is closed (1008) like one flooding frames."""
        server = await start_server(self)
        chat = await self._flood(server, b"x")
        self.assertEqual(chat.slow_consumers, 0)
        metrics = (await server.client().request("GET", "/metrics")).body.decode()
        refused = [line for line in metrics.splitlines() if line.startswith('chatd_rate_limited_total{kind="socket"}')]
        self.assertGreater(float(refused[0].split()[-1]), 10, refused)

    async def test_unread_pongs_are_bounded_like_any_frame(self):
        """With no rate limit, the pongs of a peer that never reads pile up only to the outbox bound: then 4008."""
        server = await start_server(self, socket_rate=Rate(0, 0))
        chat = await self._flood(server, b"p" * 125)
        self.assertEqual(chat.slow_consumers, 1)
        self.assertLessEqual(server.service.metrics.largest_outbox, OUTBOX_LIMIT + 200)


class TlsUploadTests(TestCase):
    timeout = 60

    async def test_uploads_over_tls_are_checked_then_read(self):
        """Over HTTPS too, an upload without a token is refused unread, and a member's upload is stored whole."""
        from twisted.internet import ssl
        from twisted.web.client import (
            Agent,
            BrowserLikePolicyForHTTPS,
            HTTPConnectionPool,
        )

        from tests.harness import Client
        from tests.tls import self_signed

        key, cert = self_signed(tempfile.mkdtemp(prefix="chatd-tls-"))
        server = await start_server(self, listen=["tcp:0:interface=127.0.0.1",
                                                  f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"])
        alice = await server.client().register("alice")
        await joined(server.url, alice["token"], test=self)
        trust = ssl.Certificate.loadPEM(cert.read_bytes())
        agent = Agent(reactor, contextFactory=BrowserLikePolicyForHTTPS(trustRoot=trust),
                      pool=HTTPConnectionPool(reactor, persistent=False))
        https = Client(f"https://localhost:{server.service.listener.ports[1].getHost().port}", agent=agent)
        data = os.urandom(2 * 1024 * 1024)
        raw = body((b'form-data; name="file"; filename="big.bin"', data))
        refused = await https.request("POST", "/api/rooms/lobby/files", raw=raw, content_type=CTYPE)
        self.assertEqual((refused.status, refused.code), (401, "unauthorized"))
        stored = await https.request("POST", "/api/rooms/lobby/files", raw=raw, token=alice["token"],
                                     content_type=CTYPE)
        self.assertEqual(stored.status, 201, stored.body[:300])
        download = await https.request("GET", stored.json()["file"]["url"], token=alice["token"])
        self.assertEqual(download.body, data)
