"""Writing JSON responses and SPEC.md error bodies onto Twisted requests, or as raw HTTP bytes."""

from __future__ import annotations

import json

from twisted.web.http import RESPONSES

from chatd.errors import ApiError

# Sent on every HTTP response chatd writes (chatd.web.requests for the site, raw_error for the
# answers written before a request exists). No versions: they only help someone pick an exploit.
SERVER = b"chatd"
SECURITY_HEADERS = ((b"X-Content-Type-Options", b"nosniff"), (b"X-Frame-Options", b"DENY"))
# Reason phrases Twisted's table lacks (or names by their older RFC 2616 names).
_PHRASES = {413: b"Content Too Large", 426: b"Upgrade Required", 431: b"Request Header Fields Too Large"}


def json_body(request, status: int, body) -> bytes:
    """Set status and headers for a JSON response and return its bytes."""
    return json_bytes(request, status, json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def json_bytes(request, status: int, encoded: bytes) -> bytes:
    """The same for JSON that is already encoded (stored messages are kept as JSON)."""
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", b"application/json; charset=utf-8")
    request.setHeader(b"Cache-Control", b"no-store")
    return encoded


def no_content(request) -> bytes:
    """An empty 204 answer."""
    request.setResponseCode(204)
    return b""


def error_body(request, error: ApiError) -> bytes:
    """SPEC.md's error body for ``error``, with its status and headers set on ``request``."""
    for name, value in error.headers.items():
        request.setHeader(name.encode("ascii"), value.encode("ascii"))
    return json_body(request, error.status, error.body())


def phrase(status: int) -> bytes:
    """The reason phrase for ``status``; never anything a client sent."""
    return _PHRASES.get(status) or RESPONSES.get(status) or b"Error"


def raw_error(error: ApiError, headers: list[tuple[bytes, bytes]] = ()) -> bytes:
    """A whole HTTP/1.1 error response (SPEC.md's body) that ends the connection.

    For answers given before Twisted has a request to answer through (a body
    refused at header time) or by Autobahn (a refused handshake). ``headers``
    are added (CORS, ``Sec-WebSocket-Version``...).
    """
    body = json.dumps(error.body(), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    lines = [b"HTTP/1.1 %d %s" % (error.status, phrase(error.status)), b"Server: " + SERVER,
             b"Content-Type: application/json; charset=utf-8", b"Content-Length: %d" % len(body),
             b"Cache-Control: no-store", b"Connection: close"]
    lines += [b"%s: %s" % pair for pair in SECURITY_HEADERS]
    lines += [name.encode("ascii") + b": " + value.encode("ascii") for name, value in error.headers.items()]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
