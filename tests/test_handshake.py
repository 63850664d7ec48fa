"""Unit tests for the handshake: the plain form read by the speed-up (chatd.web.speedups.handshake), anything else
left to Autobahn; what a refused handshake answers (chatd.web.handshake, whether the speed-ups are on or off)."""

from twisted.trial.unittest import SynchronousTestCase

from chatd.web.handshake import refusal
from chatd.web.speedups.handshake import parse_upgrade

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
PLAIN = [
    "GET /ws?token=abc.def-ghi&x=1 HTTP/1.1",
    "Host: chat.example:8080",
    "Upgrade: websocket",
    "Connection: Upgrade",
    f"Sec-WebSocket-Key: {KEY}",
    "Sec-WebSocket-Version: 13",
]


def _head(lines) -> bytes:
    return "\r\n".join(lines).encode("iso-8859-1")


def _replace(name: str, line: str | None) -> list[str]:
    """PLAIN with the header ``name`` (or the request line, for "request") replaced or removed."""
    out = []
    for original in PLAIN:
        matches = original.split(" ")[0] == "GET" if name == "request" else original.lower().startswith(name + ":")
        if not matches:
            out.append(original)
        elif line is not None:
            out.append(line)
    return out


class ParseUpgradeTests(SynchronousTestCase):
    def test_plain_handshake(self):
        """What a browser or the ws library sends is read, with the token in params and the port off the host."""
        upgrade = parse_upgrade(_head(PLAIN))
        self.assertEqual(upgrade.path, "/ws")
        self.assertEqual(upgrade.params, {"token": ["abc.def-ghi"], "x": ["1"]})
        self.assertEqual(upgrade.host, "chat.example")
        self.assertEqual(upgrade.key, KEY)
        self.assertEqual(upgrade.origin, "")
        self.assertEqual(upgrade.headers["sec-websocket-version"], "13")

    def test_browser_extras(self):
        """Origin is kept, an extension offer is ignored, names are case-insensitive, token lists are read."""
        lines = _replace("connection", "connection: keep-alive, Upgrade") + [
            "Origin: https://chat.example:8080",
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
            "User-Agent: Mozilla/5.0",
            "Cookie: a=1",
            "Cookie: b=2",
        ]
        upgrade = parse_upgrade(_head(lines))
        self.assertEqual(upgrade.origin, "https://chat.example:8080")
        self.assertEqual(upgrade.headers["cookie"], "a=1, b=2")

    def test_proxied_handshake_is_the_plain_form(self):
        """A handshake through nginx keeps the fast path; its X-Forwarded-* lines are kept, repeats comma-joined."""
        lines = PLAIN + ["X-Forwarded-For: 198.51.100.7", "X-Forwarded-For: 10.0.0.2",
                         "X-Forwarded-Proto: https", "X-Forwarded-Host: chat.example"]
        upgrade = parse_upgrade(_head(lines))
        self.assertEqual(upgrade.headers["x-forwarded-for"], "198.51.100.7, 10.0.0.2")
        self.assertEqual(upgrade.headers["x-forwarded-proto"], "https")
        self.assertEqual(upgrade.headers["x-forwarded-host"], "chat.example")

    def test_everything_else_is_left_to_autobahn(self):
        """Every variation outside the plain form answers None (Autobahn then validates and answers)."""
        variants = {
            "POST": _replace("request", "POST /ws HTTP/1.1"),
            "HTTP/1.0": _replace("request", "GET /ws HTTP/1.0"),
            "absolute URI": _replace("request", "GET http://chat.example/ws HTTP/1.1"),
            "fragment": _replace("request", "GET /ws#top HTTP/1.1"),
            "extra spaces": _replace("request", "GET  /ws HTTP/1.1"),
            "no host": _replace("host", None),
            "empty host": _replace("host", "Host: "),
            "two hosts": PLAIN + ["Host: other.example"],
            "IPv6 host without port": _replace("host", "Host: [::1]"),
            "port not a number": _replace("host", "Host: chat.example:http"),
            "no upgrade": _replace("upgrade", None),
            "upgrade to h2c": _replace("upgrade", "Upgrade: h2c"),
            "connection close": _replace("connection", "Connection: close"),
            "two connections": PLAIN + ["Connection: close"],
            "version 8": _replace("sec-websocket-version", "Sec-WebSocket-Version: 8"),
            "no version": _replace("sec-websocket-version", None),
            "short key": _replace("sec-websocket-key", "Sec-WebSocket-Key: dGhl=="),
            "key not base64": _replace("sec-websocket-key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q=="),
            "two keys": PLAIN + [f"Sec-WebSocket-Key: {KEY}"],
            "two origins": PLAIN + ["Origin: https://a.example", "Origin: https://b.example"],
            "sub-protocol": PLAIN + ["Sec-WebSocket-Protocol: chat"],
            "folded header": PLAIN + ["X-Long: a", " continued"],
            "line without colon": PLAIN + ["garbage"],
        }
        for name, lines in variants.items():
            with self.subTest(variant=name):
                self.assertIsNone(parse_upgrade(_head(lines)))
        for name, head in {"bare LF": _head(PLAIN).replace(b"\r\n", b"\n"),
                           "bare CR inside": _head(PLAIN) + b"\r\nX-A: b\rc"}.items():
            with self.subTest(variant=name):
                self.assertIsNone(parse_upgrade(head))

    def test_ipv6_host_with_port(self):
        """An IPv6 Host header with a port gives the bracketed address as the host."""
        self.assertEqual(parse_upgrade(_head(_replace("host", "Host: [::1]:8080"))).host, "[::1]")

    def test_control_the_variants_differ_only_where_meant(self):
        """_replace keeps everything else: replacing a header by itself still parses."""
        self.assertIsNotNone(parse_upgrade(_head(_replace("upgrade", "Upgrade: websocket"))))


class RefusalTests(SynchronousTestCase):
    def test_autobahn_reasons_are_never_repeated(self):
        """Autobahn's reason quotes the request line (token and all): the answer keeps its status, not its words."""
        error = refusal(400, 'Bad HTTP request status line "GET /ws?token=secret&x=a b HTTP/1.1"')
        self.assertEqual((error.status, error.code), (400, "invalid_request"))
        self.assertNotIn("secret", error.message)
        self.assertNotIn("secret", str(error.body()))

    def test_statuses_and_codes(self):
        """Each refusal status gets SPEC.md's code; 401 asks for a bearer token; server faults say nothing more."""
        cases = {401: "unauthorized", 403: "forbidden", 405: "method_not_allowed", 426: "invalid_request",
                 429: "rate_limited", 431: "too_large", 500: "internal", 503: "unavailable"}
        for status, code in cases.items():
            with self.subTest(status=status):
                error = refusal(status, f"Internal server error: {status} secret")
                self.assertEqual((error.status, error.code), (status, code))
                self.assertNotIn("secret", error.message)
        self.assertEqual(refusal(401, "invalid token").headers, {"WWW-Authenticate": "Bearer"})
        self.assertEqual(refusal(426, "").headers, {"Upgrade": "websocket"})

    def test_chatd_reasons_are_passed_on(self):
        """chatd's own refusals (a ban, a foreign origin) tell the client why, in chatd's words."""
        self.assertEqual(refusal(403, "banned").message, "This account is banned.")
        self.assertEqual(refusal(403, "origin not allowed").message, "Sockets may not be opened from this origin.")
