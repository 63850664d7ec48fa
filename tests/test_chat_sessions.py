"""A socket's token on the chat harness: expiry, the ``refresh`` frame, logout (SPEC.md: Guarantees,
Details: Refresh frame, Tokens).

The tokens are real (signed and checked by the real ``Auth`` on the harness's clock): a socket is closed
with 4001 when its token expires, unless a ``refresh`` frame hands it a newer token of the same user.
"""

from __future__ import annotations

from chatd.times import iso8601, utc_from
from tests.chatharness import START, TOKEN_TTL, ChatTestCase, fired

EXPIRY = START + TOKEN_TTL


class SessionsTestCase(ChatTestCase):
    def setUp(self):
        super().setUp()
        self.alice = self.chat.connect("alice")

    def refresh(self, conn, token: str) -> dict:
        """``conn`` sends a ``refresh`` frame; returns the frame it was answered."""
        self.chat.send(conn, type="refresh", token=token)
        return conn.sent[-1]

    def codes(self, conn) -> list[int]:
        return [code for code, _ in conn.closes]


class ExpiryTests(SessionsTestCase):
    def test_closed_with_4001_at_expiry(self):
        """Nothing happens before the token's ``exp``; at ``exp`` the socket is closed with 4001."""
        self.clock.advance(TOKEN_TTL - 0.1)
        self.assertEqual(self.alice.closes, [])
        self.clock.advance(0.1)
        self.assertEqual(self.alice.closes, [(4001, "token expired")])

    def test_refresh_extends_the_socket_to_the_new_token(self):
        """A ``refresh`` with a newer token of the same user is answered ``refreshed`` with its expiry; the
        socket then lives until that expiry (a socket not refreshed closes at its own)."""
        bob = self.chat.connect("bob")
        self.clock.advance(1800)
        answer = self.refresh(self.alice, self.chat.token("alice"))
        self.assertEqual(answer, {"type": "refreshed", "expires_at": iso8601(utc_from(EXPIRY + 1800))})
        self.clock.advance(TOKEN_TTL - 1800)
        self.assertEqual((self.codes(self.alice), self.codes(bob)), ([], [4001]))
        self.clock.advance(1800)
        self.assertEqual(self.codes(self.alice), [4001])

    def test_refreshed_socket_belongs_to_the_new_token(self):
        """After a refresh, logging out the old token leaves the socket open; logging out the new one closes it."""
        old = fired(self.chat.accounts.authenticate(self.alice.token))
        new_token = self.chat.token("alice")
        self.refresh(self.alice, new_token)
        fired(self.chat.accounts.logout(old))
        self.assertEqual(self.alice.closes, [])
        fired(self.chat.accounts.logout(fired(self.chat.accounts.authenticate(new_token))))
        self.assertEqual(self.alice.closes, [(4001, "token revoked")])


class RefusedRefreshTests(SessionsTestCase):
    def assertRefused(self, token: str) -> None:
        """Refreshing with ``token`` is ``forbidden``; the socket stays open and still expires with its old token."""
        answer = self.refresh(self.alice, token)
        self.assertEqual((answer["type"], answer["code"]), ("error", "forbidden"))
        self.chat.ping(self.alice)
        self.assertEqual(self.alice.sent[-1], {"type": "pong"})
        self.clock.advance(EXPIRY - self.clock.seconds())
        self.assertEqual(self.codes(self.alice), [4001])

    def test_another_users_token_is_forbidden(self):
        """A ``refresh`` with another user's valid token is refused with ``forbidden`` and changes nothing."""
        self.clock.advance(10)
        self.assertRefused(self.chat.token("bob"))

    def test_an_invalid_token_is_forbidden(self):
        """A ``refresh`` with a token that is not valid (garbage) is refused with ``forbidden``."""
        self.assertRefused("garbage")

    def test_a_revoked_token_is_forbidden(self):
        """A ``refresh`` with a token that was logged out is refused with ``forbidden``."""
        token = self.chat.token("alice")
        fired(self.chat.accounts.logout(fired(self.chat.accounts.authenticate(token))))
        self.assertRefused(token)

    def test_store_outage_is_unavailable(self):
        """A ``refresh`` while the store is away is answered ``unavailable`` (try again), not ``forbidden``."""
        token = self.chat.token("alice")
        self.store.down = True
        answer = self.refresh(self.alice, token)
        self.assertEqual((answer["type"], answer["code"]), ("error", "unavailable"))
        self.assertEqual(self.alice.closes, [])


class LogoutTests(SessionsTestCase):
    def test_logout_closes_that_tokens_sockets_only(self):
        """Logout closes the sockets of the token used with 4001; another login's sockets stay open."""
        other = self.chat.connect("alice")
        fired(self.chat.accounts.logout(fired(self.chat.accounts.authenticate(self.alice.token))))
        self.assertEqual((self.alice.closes, other.closes), ([(4001, "token revoked")], []))
