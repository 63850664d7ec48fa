"""Reading a plain WebSocket opening handshake quickly (RFC 6455, section 4.2.1), and refusing one.

Autobahn's ``processHandshake`` handles every form a client may send (old
protocol versions, sub-protocols, flash policy requests, status pages,
proxies), and that generality is a fifth of chatd's CPU per handshake
(docs/PERFORMANCE.md). Browsers and WebSocket libraries send one form:
``GET /ws?token=… HTTP/1.1`` with ``Host``, ``Upgrade: websocket``,
``Connection: Upgrade``, ``Sec-WebSocket-Version: 13`` and a key, maybe an
``Origin`` and an extension offer. :func:`parse_upgrade` reads exactly that
form and answers ``None`` for anything else, which then takes Autobahn's path
with its own validation and error answers. Extension offers are declined
without being read: chatd accepts none (frames are prepared once for every
receiver, uncompressed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs

from chatd import errors
from chatd.chat import admission
from chatd.errors import ApiError

_KEY = re.compile(r"[A-Za-z0-9+/]{21}[AQgw]==")  # 16 random bytes in base64
_ONCE = frozenset(("host", "sec-websocket-key", "sec-websocket-version", "origin", "upgrade", "connection"))
# Headers whose presence means the request is not the plain form.
_OTHER_FORMS = ("sec-websocket-protocol", "x-forwarded-for")


@dataclass(frozen=True, slots=True)
class Upgrade:
    """The parts of a handshake request Autobahn's protocol keeps, in its own shapes."""

    status_line: str
    headers: dict[str, str]  # lower-case names
    uri: str
    path: str
    params: dict[str, list[str]]
    host: str  # without the port
    origin: str  # "" when absent
    key: str


def _tokens(value: str | None) -> set[str]:
    return {token.strip().lower() for token in value.split(",")} if value else set()


def parse_upgrade(head: bytes) -> Upgrade | None:
    """The request up to (not including) the blank line, if it is the plain form; else None."""
    text = head.decode("iso-8859-1")
    lines = text.split("\r\n")
    if text.count("\n") != len(lines) - 1 or text.count("\r") != len(lines) - 1:
        return None  # bare CR or LF line ends: leave it to Autobahn
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[0] != "GET" or parts[2] != "HTTP/1.1":
        return None
    uri = parts[1]
    if not uri.startswith("/") or "#" in uri:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        name = name.strip().lower()
        if not colon or not name or line[0] in " \t":
            return None
        value = value.strip()
        if name in headers:
            if name in _ONCE:
                return None
            headers[name] += ", " + value
        else:
            headers[name] = value
    if any(name in headers for name in _OTHER_FORMS):
        return None
    if "websocket" not in _tokens(headers.get("upgrade")) or "upgrade" not in _tokens(headers.get("connection")):
        return None
    key = headers.get("sec-websocket-key", "")
    if headers.get("sec-websocket-version") != "13" or not _KEY.fullmatch(key):
        return None
    host = headers.get("host", "")
    name, colon, port = host.rpartition(":")
    if colon:
        if not name or "]" in port or not port.isdigit():
            return None  # an IPv6 literal, or a port that is not a number
        host = name
    if not host:
        return None
    path, _, query = uri.partition("?")
    return Upgrade(lines[0], headers, uri, path, parse_qs(query) if query else {}, host,
                   headers.get("origin", ""), key)


# Reasons chatd itself gives when it refuses a handshake (chatd.web.ws), passed on as the
# message; any other reason comes from Autobahn, may quote the request line or a header (a
# token in the query), and is never repeated to the client or the log.
OWN_REASONS = {
    "invalid token": "The token is missing, invalid, expired or revoked.",
    "banned": "This account is banned.",
    "origin not allowed": "Sockets may not be opened from this origin.",
    **{reason: reason for reason in admission.REASONS.values()},
}
_MESSAGES = {
    400: "This is not a WebSocket handshake chatd accepts.",
    401: "A valid token is required.",
    403: "This connection is not allowed.",
    405: "The WebSocket handshake is a GET.",
    429: "Too many connections; try again shortly.",
    431: "The handshake's request line and headers are too large.",
    500: "Something went wrong on our side.",
}


RETRY_AFTER = 5  # seconds a client refused for too many connections should wait


def refusal(code: int, reason: str) -> ApiError:
    """What a refused handshake answers: SPEC.md's error body for status ``code``, in chatd's words."""
    message = OWN_REASONS.get(reason) or _MESSAGES.get(code) or _MESSAGES[400]
    if code == 426:
        return upgrade_required()
    if code == 503:
        return errors.unavailable()
    if code == 401:
        return errors.unauthorized(message)
    if code == 403:
        return errors.forbidden(message)
    if code == 404:
        return errors.not_found(message)
    if code == 405:
        return ApiError(405, "method_not_allowed", message)
    if code in (413, 431):
        return ApiError(code, "too_large", message)
    if code == 429:
        return errors.rate_limited(RETRY_AFTER, message)
    if code >= 500 and code != 505:
        return ApiError(500, "internal", _MESSAGES[500])
    return ApiError(code if 400 <= code < 500 or code == 505 else 400, "invalid_request", message)


def upgrade_required() -> ApiError:
    """The answer to a plain request for the socket's address (no ``Upgrade: websocket``)."""
    return ApiError(426, "invalid_request", "This address takes WebSocket connections only.",
                    headers={"Upgrade": "websocket"})
