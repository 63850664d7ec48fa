"""Typing indicators and read receipts on the chat harness (SPEC.md: ``typing``, ``read``, Details: Unread;
docs/BEHAVIOUR.md: Read receipts, Slow consumers).

Both go to the room's other members only, as frames a slow reader may lose; a receipt is capped at the
room's last seq, never moves backwards, and drives the unread counts of ``/api/sessions``.
"""

from __future__ import annotations

from tests.chatharness import ChatTestCase, fired


class SignalsTestCase(ChatTestCase):
    """Alice and Bob, each with one socket that joined the lobby."""

    def setUp(self):
        super().setUp()
        self.alice, self.bob = self.chat.in_lobby("alice", "bob")

    def unread(self, username: str, room: str = "lobby") -> dict:
        """``username``'s entry for ``room`` in ``GET /api/sessions`` (History.sessions)."""
        [entry] = [s for s in fired(self.chat.history.sessions(self.chat.user(username))) if s["room"] == room]
        return entry

    def read(self, conn, seq: int, room: str = "lobby") -> None:
        self.chat.send(conn, type="read", room=room, seq=seq)


class TypingTests(SignalsTestCase):
    def test_typing_goes_to_the_others_only(self):
        """``typing`` reaches the other members with the sender's username, true then false; none of the
        sender's own sockets gets it back, not even another one that joined the room."""
        second = self.chat.connect("alice")
        self.chat.join(second)
        second.take()
        for typing in (True, False):
            self.chat.send(self.alice, type="typing", room="lobby", typing=typing)
        self.assertEqual(self.bob.take(), [{"type": "typing", "room": "lobby", "user": "alice", "typing": True},
                                           {"type": "typing", "room": "lobby", "user": "alice", "typing": False}])
        self.assertEqual((self.alice.take(), second.take()), ([], []))

    def test_typing_and_read_may_be_dropped_messages_may_not(self):
        """Typing and read frames are offered as droppable (a slow reader loses them first); messages are not."""
        self.chat.say(self.alice, "hello")
        self.chat.send(self.alice, type="typing", room="lobby", typing=True)
        self.read(self.alice, 1)
        self.assertEqual([f["type"] for f in self.bob.sent[-3:]], ["message", "typing", "read"])
        self.assertEqual([f["type"] for f in self.bob.droppable], ["typing", "read"])


class ReadTests(SignalsTestCase):
    def setUp(self):
        super().setUp()
        for i in range(3):
            self.chat.say(self.alice, f"m{i}")
        self.alice.take()
        self.bob.take()

    def test_read_is_relayed_to_the_others(self):
        """A receipt reaches the other members as ``read`` with the reader's username and seq; not the reader."""
        self.read(self.bob, 2)
        self.assertEqual(self.alice.take(), [{"type": "read", "room": "lobby", "user": "bob", "seq": 2}])
        self.assertEqual(self.bob.take(), [])

    def test_read_is_capped_at_the_last_seq(self):
        """A receipt past the room's last message counts as read up to it, and is relayed as such."""
        self.read(self.bob, 99)
        self.assertEqual(self.alice.take(), [{"type": "read", "room": "lobby", "user": "bob", "seq": 3}])
        self.assertEqual(self.unread("bob")["unread"], 0)
        self.read(self.bob, 50)  # still capped at 3: no move, nothing told
        self.assertEqual(self.alice.take(), [])

    def test_read_never_moves_backwards(self):
        """A receipt behind the user's position changes nothing and is not relayed; the furthest one is stored."""
        self.read(self.bob, 3)
        self.read(self.bob, 1)
        self.read(self.bob, 3)
        self.assertEqual([f["seq"] for f in self.alice.take()], [3])
        self.assertEqual(self.unread("bob")["unread"], 0)
        self.clock.advance(1)
        [membership] = fired(self.store.memberships(self.bob.user_id, ["lobby"]))
        self.assertEqual(membership.read_seq, 3)

    def test_read_receipts_feed_unread(self):
        """Unread counts the other users' messages after the last read, never one's own; ``last_message_at``
        is set once the room has a message."""
        self.chat.say(self.bob, "mine")
        entry = self.unread("bob")
        self.assertEqual(entry["unread"], 3)
        self.assertIsNotNone(entry["last_message_at"])
        self.read(self.bob, 2)
        self.assertEqual(self.unread("bob")["unread"], 1)
        self.assertEqual(self.unread("alice")["unread"], 1)  # bob's message

    def test_unread_counts_from_the_receipt_heard_before_it_is_stored(self):
        """Receipts are written at most once a second, but unread and the read positions ("seen by") follow
        the newest receipt at once."""
        self.read(self.bob, 2)
        [membership] = fired(self.store.memberships(self.bob.user_id, ["lobby"]))
        self.assertEqual(membership.read_seq, 0)  # not written yet
        self.assertEqual(self.unread("bob")["unread"], 1)
        self.assertEqual(fired(self.chat.history.reads("lobby")),
                         [{"user": "bob", "user_id": self.bob.user_id, "seq": 2}])
        self.clock.advance(1)
        [membership] = fired(self.store.memberships(self.bob.user_id, ["lobby"]))
        self.assertEqual(membership.read_seq, 2)
        self.assertEqual(fired(self.chat.history.reads("nowhere")), [])

    def test_messages_before_joining_are_not_unread(self):
        """A new member's unread starts at the room's last seq when they joined."""
        carol = self.chat.connect("carol")
        self.chat.join(carol)
        self.assertEqual(self.unread("carol")["unread"], 0)
        self.chat.say(self.alice, "new")
        self.assertEqual(self.unread("carol")["unread"], 1)

    def test_a_receipt_behind_the_joined_position_is_not_relayed(self):
        """A new member's read position starts at the room's last seq when they joined, so a receipt behind it
        moves nothing and, as docs/BEHAVIOUR.md says of such receipts, is not relayed."""
        carol = self.chat.connect("carol")
        self.chat.join(carol)
        self.alice.take()
        self.read(carol, 2)
        self.assertEqual(self.alice.take(), [])
