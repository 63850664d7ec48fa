"""Sessions.changed: what the store's change feed (another chatd, the admin CLI) does to open sockets."""

from datetime import datetime, timezone

from chatd.storage.records import Message
from tests.test_chat_limits import START, ChatLimitsTestCase, FakeConnection

NOW = datetime(2024, 5, 1, tzinfo=timezone.utc)


class ChangedTests(ChatLimitsTestCase):
    def setUp(self):
        super().setUp()
        self.successResultOf(self.store.create_user("root", "root@example.com", b"h", NOW))  # the admin
        self.bob = self.successResultOf(self.store.create_user("bob", "bob@example.com", b"h", NOW))
        self.carol = self.successResultOf(self.store.create_user("carol", "carol@example.com", b"h", NOW))
        self.b1 = self.open(FakeConnection(user_id=self.bob.id, username="bob", jti="b1"))
        self.b2 = self.open(FakeConnection(user_id=self.bob.id, username="bob", jti="b2"))
        self.c = self.open(FakeConnection(user_id=self.carol.id, username="carol", jti="c"))

    def test_banned_elsewhere_closes_with_4003(self):
        """A ban made elsewhere closes every socket of that user with 4003, and nobody else's."""
        self.successResultOf(self.store.update_user(self.bob.id, {"banned": True}))
        self.chat.sessions.changed([], [self.bob.id])
        self.assertEqual([self.b1.closes, self.b2.closes], [[(4003, "banned")]] * 2)
        self.assertEqual(self.c.closes, [])

    def test_deleted_elsewhere_closes_with_4001(self):
        """A deletion made elsewhere closes the user's sockets with 4001."""
        self.successResultOf(self.store.delete_user(self.bob.id))
        self.chat.sessions.changed([], [self.bob.id])
        self.assertEqual(self.b1.closes, [(4001, "token revoked")])

    def test_password_changed_elsewhere_closes_older_sockets_only(self):
        """Tokens issued before the change lose their sockets; one issued after keeps it."""
        self.b2.sock.issued_at = START + 10
        self.successResultOf(self.store.update_user(self.bob.id, {"tokens_valid_after": START + 5}))
        self.chat.sessions.changed([], [self.bob.id])
        self.assertEqual(self.b1.closes, [(4001, "token revoked")])
        self.assertEqual(self.b2.closes, [])

    def test_harmless_change_closes_nothing(self):
        """A change that takes no right away (a new email), or of a user without sockets, closes nothing."""
        self.successResultOf(self.store.update_user(self.bob.id, {"email": "robert@example.com"}))
        self.chat.sessions.changed([], [self.bob.id, "someone-without-sockets"])
        self.assertEqual(self.b1.closes + self.b2.closes + self.c.closes, [])

    def test_token_revoked_elsewhere_closes_its_sockets(self):
        """A token revoked elsewhere (a logout on another chatd) closes that token's sockets only, with 4001."""
        self.chat.sessions.changed(["b2"], [])
        self.assertEqual((self.b1.closes, self.b2.closes), ([], [(4001, "token revoked")]))

    def test_store_down_closes_nothing_and_fails_nothing(self):
        """With the store away, re-checking changed users closes nothing and logs no error (the next poll retries)."""
        self.store.down = True
        self.chat.sessions.changed([], [self.bob.id])
        self.assertEqual(self.b1.closes, [])
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_renamed_elsewhere_renames_sockets_and_what_they_sent(self):
        """Finding 2: after bob renames himself on another chatd, his sockets here say robert (what they
        send next is stored as robert), and what they sent under the old name is renamed in the store."""
        self.successResultOf(self.store.insert_messages([Message("lobby", 1, self.bob.id, "bob", NOW, "sent here")]))
        self.successResultOf(self.store.update_user(self.bob.id, {"username": "robert"}))
        self.chat.sessions.changed([], [self.bob.id])
        self.assertEqual((self.b1.sock.username, self.b2.sock.username), ("robert", "robert"))
        [stored] = self.successResultOf(self.store.get_messages("lobby", [1]))
        self.assertEqual(stored.user, "robert")
        self.assertEqual(self.b1.closes + self.b2.closes, [])

    def test_the_new_name_is_used_for_messages_sent_after_the_rename(self):
        """A rename seen here changes the author of later messages from the same, still open, socket."""
        self.chat.received(self.b1, b'{"type":"join","room":"lobby"}', False)
        self.successResultOf(self.store.update_user(self.bob.id, {"username": "robert"}))
        self.chat.sessions.changed([], [self.bob.id])
        self.chat.received(self.b1, b'{"type":"message","room":"lobby","text":"after","client_id":"x"}', False)
        self.clock.advance(1)
        [stored] = self.successResultOf(self.store.get_messages("lobby", [1]))
        self.assertEqual((stored.user, stored.text), ("robert", "after"))
