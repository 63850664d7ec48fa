"""``--trusted-proxies`` end to end: a real chatd on real sockets, with this test as the proxy at 127.0.0.1 sending
X-Forwarded-For/-Proto/-Host. Trusted, each forwarded client has its own login budget and handshake budget, and a
page served over https passes the Origin check; not trusted, the same headers change nothing. Speed-ups on and off."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from chatd.ratelimit import Rate
from chatd.web.proxies import TrustedProxies
from tests.harness import start_server
from tests.wsclient import raw_handshake

# Three refreshes per address, then 429 (the budget comes back after minutes, not during the test).
AUTH_RATE = Rate(0.01, 3)
HANDSHAKE_RATE = Rate(0.01, 2)
PAGE = "Origin: https://chat.example\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: chat.example\r\n"


class TrustedProxyTests(TestCase):
    timeout = 60
    speedups = True

    async def server(self, trusted: str):
        return await start_server(self, trusted_proxies=TrustedProxies.parse(trusted), auth_rate=AUTH_RATE,
                                  handshake_rate=HANDSHAKE_RATE, speedups=self.speedups)

    async def refresh(self, server, forwarded_for: str | None) -> int:
        """A refresh with a bad token: 401 while the address has budget, 429 after (no bcrypt, no account)."""
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
        return (await server.client().request("POST", "/api/auth/refresh", token="not-a-token", headers=headers)).status

    async def test_login_rate_per_forwarded_client(self):
        """Through a trusted proxy the auth rate limits each client alone; a client's own header buys nothing."""
        server = await self.server("127.0.0.1")
        first = [await self.refresh(server, "198.51.100.1") for _ in range(4)]
        self.assertEqual(first, [401, 401, 401, 429])
        self.assertEqual(await self.refresh(server, "198.51.100.2"), 401)  # another user is not locked out
        # The limited client writes its own X-Forwarded-For; the proxy appends what it saw.
        self.assertEqual(await self.refresh(server, "203.0.113.77, 198.51.100.1"), 429)
        self.assertEqual(await self.refresh(server, None), 401)  # the proxy's own requests: its own budget

    async def test_untrusted_peer_cannot_spoof(self):
        """Without trust every request is the peer's: varying X-Forwarded-For does not dodge the limit."""
        server = await self.server("10.0.0.0/8")  # someone else
        statuses = [await self.refresh(server, f"198.51.100.{i}") for i in range(1, 6)]
        self.assertEqual(statuses, [401, 401, 401, 429, 429])

    async def test_socket_through_a_tls_proxy(self):
        """An https page's socket through a trusted proxy opens; each client has its own handshake budget."""
        server = await self.server("127.0.0.1")
        token = (await server.client().register("alice"))["token"]
        statuses = [(await raw_handshake(server.port, token, PAGE + "X-Forwarded-For: 198.51.100.1\r\n"))[0]
                    for _ in range(3)]
        self.assertEqual(statuses, [b"101", b"101", b"429"])
        status, _, _ = await raw_handshake(server.port, token, PAGE + "X-Forwarded-For: 198.51.100.2\r\n")
        self.assertEqual(status, b"101")
        status, _, _ = await raw_handshake(server.port, token, "Origin: https://evil.example\r\n"
                                           "X-Forwarded-Proto: https\r\nX-Forwarded-For: 198.51.100.3\r\n")
        self.assertEqual(status, b"403")

    async def test_untrusted_peer_gets_no_origin_help(self):
        """From an untrusted peer, X-Forwarded-Proto/-Host do not make a foreign https origin pass."""
        server = await self.server("")
        token = (await server.client().register("alice"))["token"]
        status, _, _ = await raw_handshake(server.port, token, PAGE)
        self.assertEqual(status, b"403")


class TrustedProxyWithoutSpeedupsTests(TrustedProxyTests):
    """The same with the speed-ups off (CHATD_SPEEDUPS=0): handshakes through the site and Autobahn."""

    speedups = False
