"""A WebSocket test client on real sockets: connect, send frames, await the frames a user would see."""

from __future__ import annotations

import base64
import json
import os
import re
from collections import deque
from urllib.parse import quote

from autobahn.twisted.websocket import (
    WebSocketClientFactory,
    WebSocketClientProtocol,
    connectWS,
)
from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from tests.harness import Client


class _Protocol(WebSocketClientProtocol):
    def onOpen(self):
        self.factory.opened.callback(self)

    def onMessage(self, payload, isBinary):
        self.factory.client._arrived(json.loads(payload))

    def onClose(self, wasClean, code, reason):
        client = self.factory.client
        if not self.factory.opened.called:
            self.factory.opened.errback(ConnectionRefused(self.http_status if hasattr(self, "http_status") else None, reason))
        client.close_code = code
        client.close_reason = reason
        if not client.closed.called:
            client.closed.callback(code)


class ConnectionRefused(Exception):
    def __init__(self, status, reason):
        super().__init__(f"refused: {status} {reason}")
        self.status = status


class WsClient:
    """One socket. ``frames`` holds what arrived and nobody awaited yet; ``received`` everything, in order."""

    def __init__(self) -> None:
        self.frames: deque = deque()
        self.received: list[dict] = []
        self._waiting: list[tuple] = []
        self.closed: defer.Deferred = defer.Deferred()
        self.close_code = None
        self.close_reason = None
        self.protocol: _Protocol | None = None

    def _arrived(self, frame: dict) -> None:
        self.received.append(frame)
        for i, (wanted, waiter) in enumerate(self._waiting):
            if wanted is None or frame.get("type") in wanted:
                del self._waiting[i]
                waiter.callback(frame)
                return
        self.frames.append(frame)

    def send(self, frame) -> None:
        data = frame if isinstance(frame, bytes) else json.dumps(frame).encode()
        self.protocol.sendMessage(data)

    def send_raw(self, data: bytes, binary: bool = False) -> None:
        self.protocol.sendMessage(data, isBinary=binary)

    async def next(self, *types: str, timeout: float = 5.0) -> dict:
        """The next frame (of one of ``types``), skipping and keeping others."""
        wanted = set(types) or None
        for frame in list(self.frames):
            if wanted is None or frame.get("type") in wanted:
                self.frames.remove(frame)
                return frame
        waiter: defer.Deferred = defer.Deferred()
        self._waiting.append((wanted, waiter))
        waiter.addTimeout(timeout, reactor)
        try:
            return await waiter
        except defer.TimeoutError:
            self._waiting = [(w, d) for w, d in self._waiting if d is not waiter]
            raise AssertionError(f"no {types or 'frame'} within {timeout}s; had {list(self.frames)}") from None

    async def none(self, *types: str, wait: float = 0.3) -> None:
        """Assert that no frame (of ``types``) arrives within ``wait`` seconds."""
        await defer.Deferred.fromCoroutine(_sleep(wait))
        unexpected = [f for f in self.frames if not types or f.get("type") in types]
        if unexpected:
            raise AssertionError(f"unexpected frames: {unexpected}")

    async def close(self) -> None:
        if self.protocol is not None and not self.closed.called:
            self.protocol.sendClose(1000)
            await self.closed


async def _sleep(seconds: float) -> None:
    d: defer.Deferred = defer.Deferred()
    reactor.callLater(seconds, d.callback, None)
    await d


async def connect(base_url: str, token: str | None, origin: str | None = None, test=None) -> WsClient:
    """Open ``/ws?token=…``; raises ConnectionRefused if the handshake is refused."""
    url = base_url.replace("http", "ws", 1) + "/ws" + (f"?token={quote(token)}" if token else "")
    client = WsClient()
    headers = {"Origin": origin} if origin else {}
    factory = WebSocketClientFactory(url, headers=headers)
    factory.protocol = _Protocol
    factory.setProtocolOptions(autoPingInterval=0, openHandshakeTimeout=5, closeHandshakeTimeout=2)
    factory.client = client
    factory.opened = defer.Deferred()
    connectWS(factory)
    client.protocol = await factory.opened
    if test is not None:
        test.addCleanup(lambda: defer.ensureDeferred(client.close()))
    return client


async def handshake_status(base_url: str, token: str | None, origin: str | None = None) -> int:
    """The HTTP status of a WebSocket opening handshake (401/403 for refusals, 101 accepted)."""
    headers = {
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
    }
    if origin:
        headers["Origin"] = origin
    path = "/ws" + (f"?token={quote(token)}" if token else "")
    response = await Client(base_url).request("GET", path, headers=headers, content_type=None)
    return response.status


def _response_end(data: bytes) -> int | None:
    """Where the first complete HTTP response in ``data`` ends (Content-Length or chunked), if it has."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    start = len(head) + len(sep)
    length = re.search(rb"(?im)^content-length: *(\d+)", head)
    if length:
        return start + int(length.group(1)) if len(rest) >= int(length.group(1)) else None
    last = rest.find(b"0\r\n\r\n")  # the last chunk of a chunked body
    return None if last < 0 else start + last + 5


class _RawHandshake(protocol.Protocol):
    def __init__(self, before: bytes, request: bytes, piece: int) -> None:
        self.before = before
        self.request = request
        self.piece = piece or len(request)
        self.answer = None
        self.data = b""
        self.done: defer.Deferred = defer.Deferred()

    def connectionMade(self) -> None:
        if self.before:
            self.transport.write(self.before)  # the handshake goes once its answer is in
        else:
            self._send_request()

    def _send_request(self) -> None:
        # Several writes, a reactor turn apart, arrive as several reads on the server.
        size = self.piece
        chunks = [self.request[i:i + size] for i in range(0, len(self.request), size)]
        for delay, chunk in enumerate(chunks):
            reactor.callLater(0.02 * delay, self.transport.write, chunk)

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        if self.before:
            end = _response_end(self.data)
            if end is None:
                return
            self.before, self.data = b"", self.data[end:]
            self._send_request()
        head, sep, rest = self.data.partition(b"\r\n\r\n")
        if sep and (rest or not head.startswith(b"HTTP/1.1 101")) and self.answer is None:
            self.answer = (head.split(b" ", 2)[1], head, rest)
            self.transport.abortConnection()

    def connectionLost(self, reason) -> None:
        # Answered once the connection is gone, so no test ends with a socket still closing.
        self.done.callback(self.answer or (b"", self.data, b""))


def handshake_request(port: int, token: str, extra: str = "", path: str = "/ws", host: str | None = None) -> bytes:
    """An opening handshake for ``path``, as a browser would write it (plus ``extra`` header lines; ``host``:
    the Host header, 127.0.0.1:``port`` by default)."""
    key = base64.b64encode(os.urandom(16)).decode()
    host = host or f"127.0.0.1:{port}"
    return (f"GET {path}?token={quote(token)} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n").encode()


async def raw_handshake(port: int, token: str, extra: str = "", before: bytes = b"", endpoint=None,
                        piece: int = 0, path: str = "/ws", host: str | None = None) -> tuple[bytes, bytes, bytes]:
    """Send an opening handshake exactly as written (e.g. with a compression offer), after the
    bytes ``before`` (say, a complete HTTP request on the same connection), in writes of ``piece``
    bytes (0: all at once):
    (status, response headers, the first bytes after them)."""
    raw = _RawHandshake(before, handshake_request(port, token, extra, path, host), piece)
    await connectProtocol(endpoint or TCP4ClientEndpoint(reactor, "127.0.0.1", port), raw)
    return await raw.done.addTimeout(5, reactor)


async def joined_users(server, room: str, *names: str, test=None) -> list[WsClient]:
    """Register each of ``names`` on ``server`` and give each a socket that joined ``room``."""
    http = server.client()
    return [await joined(server.url, (await http.register(name))["token"], room, test=test) for name in names]


async def joined(base_url: str, token: str, room: str = "lobby", test=None, origin: str | None = None) -> WsClient:
    """A socket past its ``hello`` that has joined ``room`` (the user is then a member)."""
    ws = await connect(base_url, token, origin=origin, test=test)
    await ws.next("hello")
    ws.send({"type": "join", "room": room})
    await ws.next("joined")
    return ws
