"""Unit tests for chatd.web.cors: SPEC.md's Origin rule and ``--allowed-origins``."""

from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from chatd.web.cors import OriginPolicy, apply_cors


class OriginPolicyTests(SynchronousTestCase):
    """Which origins may call the API and open sockets."""

    def test_no_origin(self):
        """Requests without ``Origin`` (curl, scripts) are allowed, with or without a Host."""
        policy = OriginPolicy()
        self.assertTrue(policy.allows(None, "chat.example.com", secure=False))
        self.assertTrue(policy.allows(None, None, secure=True))

    def test_same_host_and_port(self):
        """An Origin with the Host header's host and port is allowed, case-insensitively."""
        policy = OriginPolicy()
        self.assertTrue(policy.allows("http://chat.example.com:8080", "chat.example.com:8080", secure=False))
        self.assertTrue(policy.allows("http://Chat.Example.com:8080", "chat.example.COM:8080", secure=False))
        self.assertTrue(policy.allows("http://127.0.0.1:8080/", "127.0.0.1:8080", secure=False))
        self.assertTrue(policy.allows("http://[::1]:8080", "[::1]:8080", secure=False))

    def test_default_ports(self):
        """An omitted port means 80 for http and 443 for https, on either side."""
        policy = OriginPolicy()
        self.assertTrue(policy.allows("http://chat.example.com", "chat.example.com", secure=False))
        self.assertTrue(policy.allows("http://chat.example.com:80", "chat.example.com", secure=False))
        self.assertTrue(policy.allows("https://chat.example.com", "chat.example.com", secure=True))
        self.assertTrue(policy.allows("https://chat.example.com", "chat.example.com:443", secure=True))
        self.assertFalse(policy.allows("https://chat.example.com", "chat.example.com", secure=False))
        self.assertFalse(policy.allows("http://chat.example.com", "chat.example.com", secure=True))

    def test_other_host_or_port(self):
        """Another host, another port, or a malformed Origin is refused."""
        policy = OriginPolicy()
        host = "chat.example.com:8080"
        for origin in [
            "http://evil.example.com:8080",
            "http://chat.example.com:8081",
            "http://chat.example.com.evil.com:8080",
            "null",
            "",
            "chat.example.com:8080",
            "http://chat.example.com:99999",
        ]:
            with self.subTest(origin=origin):
                self.assertFalse(policy.allows(origin, host, secure=False))

    def test_missing_host_header(self):
        """With an Origin but no Host header nothing matches."""
        self.assertFalse(OriginPolicy().allows("http://chat.example.com", None, secure=False))

    def test_configured_origin(self):
        """A configured origin is allowed from anywhere, trailing slash and case ignored; others are not."""
        policy = OriginPolicy(["https://app.example.com/"])
        self.assertTrue(policy.allows("https://app.example.com", "api.example.com", secure=True))
        self.assertTrue(policy.allows("HTTPS://APP.example.com", "api.example.com", secure=True))
        self.assertFalse(policy.allows("https://other.example.com", "api.example.com", secure=True))
        self.assertFalse(policy.allows("http://app.example.com", "api.example.com", secure=True))
        self.assertTrue(policy.cross_origin_allowed("https://app.example.com"))
        self.assertFalse(policy.cross_origin_allowed("https://other.example.com"))
        self.assertFalse(policy.cross_origin_allowed(None))

    def test_wildcard(self):
        """``*`` allows every origin."""
        self.assertTrue(OriginPolicy(["*"]).allows("https://anything.example", "api.example.com", secure=True))


def _request(method=b"GET", **headers):
    request = DummyRequest([b"api", b"users"])
    request.method = method
    for name, value in headers.items():
        request.requestHeaders.setRawHeaders(name.replace("_", "-"), [value])
    return request


def _header(request, name):
    values = request.responseHeaders.getRawHeaders(name)
    return values[-1] if values else None


class ApplyCorsTests(SynchronousTestCase):
    """CORS response headers and preflight answers."""

    def setUp(self):
        self.policy = OriginPolicy(["https://app.example.com"])

    def test_configured_origin_gets_headers(self):
        """A configured origin is echoed in Access-Control-Allow-Origin, Retry-After exposed; not a preflight."""
        request = _request(origin="https://app.example.com")
        self.assertFalse(apply_cors(request, self.policy))
        self.assertEqual(_header(request, "Access-Control-Allow-Origin"), "https://app.example.com")
        self.assertEqual(_header(request, "Access-Control-Expose-Headers"), "Retry-After")
        self.assertEqual(_header(request, "Vary"), "Origin")

    def test_unlisted_origin_gets_none(self):
        """Other origins get no CORS grant (only Vary: Origin)."""
        request = _request(origin="https://evil.example.com")
        self.assertFalse(apply_cors(request, self.policy))
        self.assertIsNone(_header(request, "Access-Control-Allow-Origin"))
        self.assertEqual(_header(request, "Vary"), "Origin")

    def test_no_origin(self):
        """A request without Origin gets no CORS grant."""
        request = _request()
        self.assertFalse(apply_cors(request, self.policy))
        self.assertIsNone(_header(request, "Access-Control-Allow-Origin"))

    def test_preflight_allowed(self):
        """A preflight from a configured origin lists methods and headers and is answered here."""
        request = _request(b"OPTIONS", origin="https://app.example.com", access_control_request_method="PATCH")
        self.assertTrue(apply_cors(request, self.policy))
        self.assertEqual(_header(request, "Access-Control-Allow-Origin"), "https://app.example.com")
        self.assertIn("PATCH", _header(request, "Access-Control-Allow-Methods"))
        self.assertEqual(_header(request, "Access-Control-Allow-Headers"), "Authorization, Content-Type")
        self.assertEqual(_header(request, "Access-Control-Max-Age"), "600")

    def test_preflight_refused(self):
        """A preflight from another origin is answered without any grant."""
        request = _request(b"OPTIONS", origin="https://evil.example.com", access_control_request_method="DELETE")
        self.assertTrue(apply_cors(request, self.policy))
        self.assertIsNone(_header(request, "Access-Control-Allow-Origin"))
        self.assertIsNone(_header(request, "Access-Control-Allow-Methods"))

    def test_plain_options_is_not_preflight(self):
        """OPTIONS without Access-Control-Request-Method is left to the routes."""
        request = _request(b"OPTIONS", origin="https://app.example.com")
        self.assertFalse(apply_cors(request, self.policy))
