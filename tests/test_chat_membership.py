"""Joining and leaving rooms on the chat harness (SPEC.md, Details: Membership and History; docs/BEHAVIOUR.md).

Who becomes a member, what ``joined`` answers (online members, the latest 50, everything ``since``,
``truncated``), which sockets receive a room, and what ``leave`` ends: for the user, on every socket.
"""

from __future__ import annotations

from datetime import datetime, timezone

from chatd.accounts.users import Users
from chatd.storage.records import Message
from tests.chatharness import ChatTestCase, ThreadlessHasher, fired

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)


class MembershipTestCase(ChatTestCase):
    """Alice and Bob, each with one socket open."""

    def setUp(self):
        super().setUp()
        self.alice = self.chat.connect("alice")
        self.bob = self.chat.connect("bob")

    def sessions(self, username: str) -> list[dict]:
        """What ``GET /api/sessions`` lists for ``username`` (History.sessions on their stored record)."""
        return fired(self.chat.history.sessions(self.chat.user(username)))

    def room_list(self) -> dict:
        """What ``GET /api/rooms`` lists, by room name."""
        return {room["name"]: room for room in fired(self.chat.history.rooms())}

    def fill(self, room: str, count: int) -> None:
        """``count`` messages already in the store (written by an earlier run), as the writer leaves them."""
        messages = [Message(room, seq, "u9", "old", T0, f"m{seq}") for seq in range(1, count + 1)]
        fired(self.store.insert_messages(messages))
        fired(self.store.advance_rooms({room: (count, T0)}))


class JoinTests(MembershipTestCase):
    def test_join_makes_a_member_and_answers_joined(self):
        """``join`` answers ``joined`` with the room, its online members and its (empty) history, and the
        user is a member from then on: the store and /api/sessions say so."""
        joined = self.chat.join(self.alice)
        self.assertEqual(joined, {"type": "joined", "room": "lobby", "members": ["alice"], "history": []})
        self.assertEqual([s["room"] for s in self.sessions("alice")], ["lobby"])
        self.assertEqual(self.sessions("bob"), [])

    def test_members_lists_the_members_online_now(self):
        """``joined.members`` lists the room's members who are online, whether or not their socket joined
        the room; a member whose sockets are all closed is not listed."""
        self.chat.join(self.bob)
        self.chat.closed(self.bob)
        self.assertEqual(self.chat.join(self.alice)["members"], ["alice"])
        self.chat.connect("bob")  # online again; this socket has not joined
        self.assertEqual(self.chat.join(self.alice)["members"], ["alice", "bob"])

    def test_membership_survives_closing_every_socket(self):
        """Membership lasts until an explicit leave: after bob's last socket closes he is still listed in
        /api/sessions and counted in /api/rooms' ``members`` (but not its ``online``)."""
        self.chat.join(self.bob)
        self.chat.closed(self.bob)
        self.chat.join(self.alice)
        self.assertEqual([s["room"] for s in self.sessions("bob")], ["lobby"])
        lobby = self.room_list()["lobby"]
        self.assertEqual((lobby["members"], lobby["online"]), (2, 1))

    def test_history_is_the_latest_50(self):
        """Without ``since``, ``joined.history`` holds the latest 50 messages, oldest first, not truncated."""
        self.chat.join(self.alice)
        for i in range(60):
            self.chat.send(self.alice, type="message", room="lobby", text=f"m{i}", client_id=f"c{i}")
        self.chat.flush()
        self.assertEqual(len(self.alice.of_type("ack")), 60)
        joined = self.chat.join(self.bob)
        self.assertEqual([m["seq"] for m in joined["history"]], list(range(11, 61)))
        self.assertEqual((joined["history"][0]["text"], joined["history"][-1]["text"]), ("m10", "m59"))
        self.assertNotIn("truncated", joined)

    def test_history_since_is_everything_after_it(self):
        """With ``since``, ``joined.history`` is every message after that seq (all of them for 0, none past
        the last), also from the store for messages written before this process started."""
        self.fill("lobby", 60)
        self.assertEqual([m["seq"] for m in self.chat.join(self.bob, since=55)["history"]], [56, 57, 58, 59, 60])
        everything = self.chat.join(self.bob, since=0)
        self.assertEqual([m["seq"] for m in everything["history"]], list(range(1, 61)))
        self.assertNotIn("truncated", everything)
        self.assertEqual(self.chat.join(self.bob, since=100)["history"], [])

    def test_history_since_past_1000_is_truncated(self):
        """``since`` brings at most 1000 messages, the oldest after it, with ``truncated: true``; the next
        join ``since`` the last of them brings the rest, not truncated."""
        self.fill("lobby", 1200)
        first = self.chat.join(self.bob, since=0)
        self.assertEqual([m["seq"] for m in first["history"]], list(range(1, 1001)))
        self.assertIs(first["truncated"], True)
        rest = self.chat.join(self.bob, since=1000)
        self.assertEqual([m["seq"] for m in rest["history"]], list(range(1001, 1201)))
        self.assertNotIn("truncated", rest)

    def test_second_join_does_not_duplicate_delivery(self):
        """Joining twice on one socket answers ``joined`` twice, yet each message arrives there once."""
        self.chat.join(self.alice)
        self.chat.join(self.alice)
        self.chat.join(self.bob)
        self.chat.say(self.alice, "once")
        self.chat.say(self.bob, "twice?")
        self.assertEqual([m["text"] for m in self.alice.of_type("message")], ["once", "twice?"])
        self.assertEqual(len(self.alice.of_type("joined")), 2)

    def test_only_joined_sockets_receive_room_frames(self):
        """A socket receives a room only after it sent ``join`` there: bob's other socket, open but not
        joined, gets none of the room's messages, typing or presence."""
        self.chat.join(self.alice)
        self.chat.join(self.bob)
        elsewhere = self.chat.connect("bob")
        carol = self.chat.connect("carol")
        self.chat.join(carol)
        self.chat.say(self.alice, "for joined sockets")
        self.chat.send(self.alice, type="typing", room="lobby", typing=True)
        self.assertEqual(self.bob.last("message")["text"], "for joined sockets")
        self.assertEqual(elsewhere.types(), [])

    def test_reconnect_with_since_recovers_missed_messages(self):
        """A client that was away rejoins with ``since`` its last seq and gets exactly what it missed."""
        self.chat.join(self.alice)
        self.chat.join(self.bob)
        self.chat.say(self.alice, "before")
        last_seen = self.bob.last("message")["seq"]
        self.chat.closed(self.bob)
        for i in range(5):
            self.chat.say(self.alice, f"missed {i}")
        again = self.chat.connect("bob")
        joined = self.chat.join(again, since=last_seen)
        self.assertEqual([m["text"] for m in joined["history"]], [f"missed {i}" for i in range(5)])


class LeaveTests(MembershipTestCase):
    def setUp(self):
        super().setUp()
        self.chat.join(self.alice)
        self.chat.join(self.bob)

    def test_leave_answers_left_on_every_socket_of_the_user_that_joined(self):
        """``leave`` ends the membership for the user, not just the socket: each of their sockets that had
        joined the room gets ``left`` (without a reason); one that had not gets nothing."""
        second = self.chat.connect("bob")
        self.chat.join(second)
        unjoined = self.chat.connect("bob")
        self.chat.send(self.bob, type="leave", room="lobby")
        self.assertEqual(self.bob.sent[-1], {"type": "left", "room": "lobby"})
        self.assertEqual(second.sent[-1], {"type": "left", "room": "lobby"})
        self.assertEqual(unjoined.types(), [])

    def test_no_delivery_after_leave(self):
        """After ``leave`` none of the user's sockets receives the room, and their frames for it are
        refused with ``not_in_room`` (``message`` with its ``client_id`` as ``ref``)."""
        second = self.chat.connect("bob")
        self.chat.join(second)
        self.chat.send(second, type="leave", room="lobby")
        self.chat.say(self.alice, "bob is gone")
        self.assertEqual([m["text"] for m in self.bob.of_type("message") + second.of_type("message")], [])
        self.bob.take()
        for frame in ({"type": "message", "room": "lobby", "text": "x", "client_id": "c1"},
                      {"type": "typing", "room": "lobby", "typing": True},
                      {"type": "read", "room": "lobby", "seq": 1},
                      {"type": "leave", "room": "lobby"}):
            self.chat.send(self.bob, **frame)
        self.assertEqual([(f["type"], f["code"], f.get("ref")) for f in self.bob.take()],
                         [("error", "not_in_room", "c1")] + [("error", "not_in_room", None)] * 3)

    def test_leave_ends_the_membership(self):
        """After ``leave`` the room is gone from /api/sessions and from the room's member count, and a later
        ``join`` makes the user a member again."""
        self.chat.send(self.bob, type="leave", room="lobby")
        self.assertEqual(self.sessions("bob"), [])
        self.assertEqual(self.room_list()["lobby"]["members"], 1)
        self.assertEqual(self.chat.join(self.alice)["members"], ["alice"])  # bob is online, no longer a member
        self.chat.join(self.bob)
        self.assertEqual([s["room"] for s in self.sessions("bob")], ["lobby"])

    def test_leave_from_a_socket_that_did_not_join_is_not_in_room(self):
        """``leave`` needs the socket to have joined the room: from another socket of a member it is
        refused with ``not_in_room`` and the membership stays."""
        unjoined = self.chat.connect("bob")
        self.chat.send(unjoined, type="leave", room="lobby")
        self.assertEqual((unjoined.sent[-1]["type"], unjoined.sent[-1]["code"]), ("error", "not_in_room"))
        self.assertEqual([s["room"] for s in self.sessions("bob")], ["lobby"])

    def test_a_deleted_user_is_no_longer_a_member(self):
        """Deleting an account ends its memberships: the room's member count drops, and its sockets close
        with 4001."""
        users = Users(self.store, ThreadlessHasher(), self.clock, self.registry, self.chat.events)
        bob = self.chat.user("bob")
        fired(users.delete_user(fired(self.chat.accounts.authenticate(self.bob.token)), bob.id))
        self.assertEqual(self.bob.closes, [(4001, "token revoked")])
        self.assertEqual(self.room_list()["lobby"]["members"], 1)
