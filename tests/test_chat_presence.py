"""Presence on the chat harness (SPEC.md, Details: Membership; docs/BEHAVIOUR.md: Presence).

A user's first socket opening sends ``online`` and their last closing ``offline`` to the rooms they are
a member of; becoming and stopping being a member sends ``join`` and ``leave``. Each goes to the sockets
of the other members that joined the room.
"""

from __future__ import annotations

from tests.chatharness import ChatTestCase


def presence(user: str, event: str, room: str = "lobby") -> dict:
    return {"type": "presence", "room": room, "user": user, "event": event}


class PresenceTests(ChatTestCase):
    def setUp(self):
        super().setUp()
        self.alice = self.chat.connect("alice")
        self.chat.join(self.alice)
        self.alice.take()

    def test_join_and_leave_tell_the_other_members(self):
        """Becoming a member sends ``join`` and leaving sends ``leave`` to the other members."""
        bob = self.chat.connect("bob")
        self.chat.join(bob)
        self.assertEqual(self.alice.take(), [presence("bob", "join")])
        self.chat.send(bob, type="leave", room="lobby")
        self.assertEqual(self.alice.take(), [presence("bob", "leave")])

    def test_joining_again_elsewhere_is_no_event(self):
        """A member joining again, on the same or another socket, or after a reconnect, causes no event."""
        bob = self.chat.connect("bob")
        self.chat.join(bob)
        self.alice.take()
        self.chat.join(bob)
        self.chat.join(self.chat.connect("bob"))
        self.assertEqual(self.alice.take(), [])
        for conn in self.registry.connections_of(bob.user_id):
            self.chat.dispatcher.closed(conn)
        self.chat.join(self.chat.connect("bob"))
        self.assertEqual([f["event"] for f in self.alice.take()], ["offline", "online"])

    def test_first_socket_online_last_socket_offline(self):
        """A member's first socket opening sends ``online``, their last closing ``offline``; the sockets in
        between change nothing."""
        bob = self.chat.connect("bob")
        self.chat.join(bob)
        self.chat.closed(bob)
        self.assertEqual(self.alice.take(), [presence("bob", "join"), presence("bob", "offline")])
        first = self.chat.connect("bob")
        self.assertEqual(self.alice.take(), [presence("bob", "online")])
        second = self.chat.connect("bob")
        self.chat.closed(first)
        self.assertEqual(self.alice.take(), [])
        self.chat.closed(second)
        self.assertEqual(self.alice.take(), [presence("bob", "offline")])

    def test_online_and_offline_go_to_every_room_of_the_member(self):
        """``online`` and ``offline`` reach each room the user is a member of, but no other room."""
        self.chat.join(self.alice, "side")
        self.chat.join(self.alice, "elsewhere")
        bob = self.chat.connect("bob")
        self.chat.join(bob)
        self.chat.join(bob, "side")
        self.chat.closed(bob)
        self.alice.take()
        self.chat.connect("bob")
        self.assertCountEqual(self.alice.take(), [presence("bob", "online"), presence("bob", "online", "side")])

    def test_the_socket_of_a_non_member_hears_nothing(self):
        """A user who is not a member of the room gets none of its presence, even while online."""
        carol = self.chat.connect("carol")
        bob = self.chat.connect("bob")
        self.chat.join(bob)
        self.chat.closed(bob)
        self.assertEqual(carol.types(), [])
