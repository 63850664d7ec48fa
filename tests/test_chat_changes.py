"""ChatService.changed: what the store's change feed (another chatd, the admin CLI) does to open sockets."""

from datetime import datetime, timezone

from tests.test_chat_limits import START, ChatLimitsTestCase, FakeConnection

NOW = datetime(2024, 5, 1, tzinfo=timezone.utc)


class ChangedTests(ChatLimitsTestCase):
    def setUp(self):
        super().setUp()
        self.bob = self.successResultOf(self.store.create_user("bob", "bob@example.com", b"h", NOW))
        self.carol = self.successResultOf(self.store.create_user("carol", "carol@example.com", b"h", NOW))
        self.b1 = self.open(FakeConnection(user_id=self.bob.id, username="bob", jti="b1"))
        self.b2 = self.open(FakeConnection(user_id=self.bob.id, username="bob", jti="b2"))
        self.c = self.open(FakeConnection(user_id=self.carol.id, username="carol", jti="c"))

    def test_banned_elsewhere_closes_with_4003(self):
        self.successResultOf(self.store.update_user(self.bob.id, {"banned": True}))
        self.service.changed([], [self.bob.id])
        self.assertEqual([self.b1.closes, self.b2.closes], [[(4003, "banned")]] * 2)
        self.assertEqual(self.c.closes, [])

    def test_deleted_elsewhere_closes_with_4001(self):
        self.successResultOf(self.store.delete_user(self.bob.id))
        self.service.changed([], [self.bob.id])
        self.assertEqual(self.b1.closes, [(4001, "token revoked")])

    def test_password_changed_elsewhere_closes_older_sockets_only(self):
        """Tokens issued before the change lose their sockets; one issued after keeps it."""
        self.b2.issued_at = START + 10
        self.successResultOf(self.store.update_user(self.bob.id, {"tokens_valid_after": START + 5}))
        self.service.changed([], [self.bob.id])
        self.assertEqual(self.b1.closes, [(4001, "token revoked")])
        self.assertEqual(self.b2.closes, [])

    def test_harmless_change_closes_nothing(self):
        self.successResultOf(self.store.update_user(self.bob.id, {"email": "robert@example.com"}))
        self.service.changed([], [self.bob.id, "someone-without-sockets"])
        self.assertEqual(self.b1.closes + self.b2.closes + self.c.closes, [])

    def test_token_revoked_elsewhere_closes_its_sockets(self):
        self.service.changed(["b2"], [])
        self.assertEqual((self.b1.closes, self.b2.closes), ([], [(4001, "token revoked")]))

    def test_store_down_closes_nothing_and_fails_nothing(self):
        self.store.down = True
        self.service.changed([], [self.bob.id])
        self.assertEqual(self.b1.closes, [])
        self.assertEqual(self.flushLoggedErrors(), [])
