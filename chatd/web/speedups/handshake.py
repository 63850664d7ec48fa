"""Speed-up: the plain WebSocket opening handshake (RFC 6455, section 4.2.1) read by chatd, not by Autobahn.

**What it reads.** Nothing of Autobahn's, but it writes what Autobahn's
``WebSocketServerProtocol.processHandshake`` would have recorded on the
protocol, in its shapes (``http_request_data``, ``http_status_line``,
``http_headers``, ``http_request_uri``/``path``/``params``/``host``,
``websocket_version``/``protocols``/``origin``/``extensions``, the private
``_wskey`` that ``succeedHandshake`` answers with, and ``data``), and builds
Autobahn's ``ConnectionRequest``. ``tests/test_speedups_contract.py`` checks
that Autobahn's own ``processHandshake`` sets no attribute this one does not,
and that both leave the same values for the same request.

**Why it is worth it.** Autobahn's ``processHandshake`` handles every form a
client may send (old protocol versions, sub-protocols, flash policy requests,
status pages, proxies), and that generality is a fifth of chatd's CPU per
handshake: reading the one form browsers and WebSocket libraries send saves
~25 µs per handshake (docs/PERFORMANCE.md, issue 3). That form is
``GET /ws?token=… HTTP/1.1`` with ``Host``, ``Upgrade: websocket``,
``Connection: Upgrade``, ``Sec-WebSocket-Version: 13`` and a key, maybe an
``Origin`` and an extension offer. :func:`parse_upgrade` reads exactly that
form and answers ``None`` for anything else, which then takes Autobahn's path
with its own validation (and chatd's refusals, chatd.web.handshake). Extension
offers are declined without being read: chatd accepts none (frames are
prepared once for every receiver, uncompressed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs

from autobahn.websocket.types import ConnectionDeny, ConnectionRequest

_KEY = re.compile(r"[A-Za-z0-9+/]{21}[AQgw]==")  # 16 random bytes in base64
_ONCE = frozenset(("host", "sec-websocket-key", "sec-websocket-version", "origin", "upgrade", "connection"))
# Headers whose presence means the request is not the plain form. (A proxy's X-Forwarded-For is
# read by chatd in onConnect, chatd.web.proxies, on either path: Autobahn's own reading of it is off.)
_OTHER_FORMS = ("sec-websocket-protocol",)


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


class FastHandshake:
    """Mixin for :class:`chatd.web.ws.ChatProtocol`: the plain form read here, any other by Autobahn."""

    def _read_head(self, end: int) -> None:
        upgrade = parse_upgrade(self.data[:end])
        if upgrade is None:
            super()._read_head(end)
            return
        # What Autobahn's processHandshake records, for succeedHandshake and anyone reading it.
        self.http_request_data = self.data[:end + 4]
        self.http_status_line = upgrade.status_line
        self.http_headers = upgrade.headers
        self.http_request_uri = upgrade.uri
        self.http_request_path = upgrade.path
        self.http_request_params = upgrade.params
        self.http_request_host = upgrade.host
        self.websocket_version = 13
        self.websocket_protocols = []
        self.websocket_origin = upgrade.origin
        self.websocket_extensions = []  # offers declined unread
        self._wskey = upgrade.key
        self.data = self.data[end + 4:]
        request = ConnectionRequest(self.peer, upgrade.headers, upgrade.host, upgrade.path, upgrade.params,
                                    13, upgrade.origin, [], [])
        self.onConnect(request).addCallbacks(self.succeedHandshake, self._refuse_handshake)

    def _refuse_handshake(self, failure) -> None:
        # onConnect fails with ConnectionDeny only (chatd.web.ws logs its own faults as 500s).
        deny = failure.value if failure.check(ConnectionDeny) else ConnectionDeny(500, "Internal server error")
        self.failHandshake(deny.reason, deny.code)
