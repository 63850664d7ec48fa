"""Writing JSON responses and SPEC.md error bodies onto Twisted requests."""

from __future__ import annotations

import json

from chatd.errors import ApiError


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
    request.setResponseCode(204)
    return b""


def error_body(request, error: ApiError) -> bytes:
    for name, value in error.headers.items():
        request.setHeader(name.encode("ascii"), value.encode("ascii"))
    return json_body(request, error.status, error.body())
