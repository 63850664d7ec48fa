"""Threads and reactions on the socket (chatd.chat.threads, chatd.chat.reactions), as unit tests on a Clock.

SPEC.md, Details: Threads and Reactions; the ``thread`` and ``reaction`` frames, also across two processes.
"""

from __future__ import annotations

from twisted.internet.defer import ensureDeferred

from chatd.chat.reactions import MAX_EMOJI_KINDS
from tests.chatharness import ChatTestCase, fired
from tests.test_bus_events import TwoProcesses


class ThreadTests(ChatTestCase):
    def setUp(self):
        super().setUp()
        self.chat.user("root")
        self.alice, self.bob = self.chat.in_lobby("alice", "bob")
        self.root = self.chat.say(self.alice, "root")["seq"]

    def reply(self, conn, text, reply_to, client_id=None):
        frame = {"type": "message", "room": "lobby", "text": text, "reply_to": reply_to}
        if client_id:
            frame["client_id"] = client_id
        self.chat.send(conn, **frame)
        self.chat.flush()

    def test_a_reply_takes_the_next_seq_and_carries_its_root(self):
        """A reply is a message with the room's next seq and ``reply_to``; everyone gets it, then ``thread``."""
        self.reply(self.bob, "re", self.root, "c1")
        [message] = [m for m in self.alice.of_type("message") if m["text"] == "re"]
        self.assertEqual((message["seq"], message["reply_to"]), (self.root + 1, self.root))
        self.assertEqual(self.bob.last("ack")["seq"], self.root + 1)
        for conn in (self.alice, self.bob):
            thread = conn.last("thread")
            self.assertEqual({k: thread[k] for k in ("room", "root", "replies", "last_reply_seq")},
                             {"room": "lobby", "root": self.root, "replies": 1, "last_reply_seq": self.root + 1})
            self.assertEqual(thread["last_reply_at"], message["ts"])
            types = conn.types()
            self.assertLess(len(types) - 1 - types[::-1].index("message"), len(types) - 1 - types[::-1].index("thread"))

    def test_a_reply_to_a_reply_joins_the_first_messages_thread(self):
        """Replying to a reply stores ``reply_to`` = the root, and counts in the root's thread."""
        self.reply(self.bob, "one", self.root)
        self.reply(self.alice, "two", self.root + 1)
        message = self.bob.of_type("message")[-1]
        self.assertEqual(message["reply_to"], self.root)
        self.assertEqual(self.bob.last("thread")["replies"], 2)

    def test_the_root_summary_is_in_history_cached_and_stored(self):
        """After replies, the root carries ``thread`` in a join's history (cached) and in the store."""
        self.reply(self.bob, "one", self.root)
        self.reply(self.bob, "two", self.root)
        carol = self.chat.connect("carol")
        history = self.chat.join(carol)["history"]
        self.assertEqual(history[0]["thread"]["replies"], 2)
        self.assertEqual(history[0]["thread"]["last_reply_seq"], self.root + 2)
        self.assertNotIn("thread", history[1])
        [stored] = fired(self.store.get_messages("lobby", [self.root]))
        self.assertEqual(stored.thread["replies"], 2)

    def test_a_deleted_root_keeps_its_thread(self):
        """Deleting a root leaves a tombstone that still carries ``thread``; its replies stay."""
        self.reply(self.bob, "one", self.root)
        fired(self.store.update_message("lobby", self.root, {"deleted": True, "text": None, "reactions": None,
                                                             "reactors": None}))
        self.chat.rooms.forget("lobby")
        history = self.chat.join(self.chat.connect("carol"))["history"]
        self.assertEqual((history[0]["deleted"], history[0]["thread"]["replies"]), (True, 1))
        self.assertEqual(history[1]["reply_to"], self.root)

    def test_reply_to_a_missing_or_deleted_message_is_not_found(self):
        """``reply_to`` naming no message, or a deleted one, is refused with not_found (ref: the client_id)."""
        self.reply(self.bob, "x", 99, "c9")
        self.assertEqual((self.bob.last("error")["code"], self.bob.last("error")["ref"]), ("not_found", "c9"))
        fired(self.store.update_message("lobby", self.root, {"deleted": True}))
        self.chat.rooms.forget("lobby")
        self.reply(self.bob, "x", self.root)
        self.assertEqual(self.bob.last("error")["code"], "not_found")
        self.assertEqual(self.bob.of_type("thread"), [])

    def test_bad_reply_to_is_invalid_frame(self):
        """``reply_to`` that is not a positive whole number is invalid_frame."""
        for bad in ("1", 0, -1, True, 1.5):
            self.chat.send(self.bob, type="message", room="lobby", text="x", reply_to=bad)
            self.assertEqual(self.bob.last("error")["code"], "invalid_frame", bad)

    def test_a_resent_reply_is_counted_once(self):
        """The same client_id sent twice as a reply is stored and counted once."""
        self.reply(self.bob, "re", self.root, "same")
        self.reply(self.bob, "re", self.root, "same")
        self.assertEqual(len(self.bob.of_type("thread")), 1)
        [stored] = fired(self.store.get_messages("lobby", [self.root]))
        self.assertEqual(stored.thread["replies"], 1)

    def test_a_socket_keeps_its_order_across_a_reply(self):
        """A message sent right after a reply gets the seq after it (the reply waits for its root, the rest too)."""
        self.chat.send(self.bob, type="message", room="lobby", text="re", reply_to=self.root)
        self.chat.send(self.bob, type="message", room="lobby", text="after")
        self.chat.flush()
        texts = [m["text"] for m in self.alice.of_type("message")]
        self.assertEqual(texts[-2:], ["re", "after"])

    def test_thread_page(self):
        """Threads.page answers the root and its replies oldest first, paged by ``before``."""
        for n in range(5):
            self.reply(self.bob, f"r{n}", self.root)
        self.chat.say(self.alice, "not in the thread")
        page = fired(self._page(self.root, 3, None))
        self.assertEqual([m.text for m in page["messages"]], ["r2", "r3", "r4"])
        self.assertEqual(page["root"].seq, self.root)
        older = fired(self._page(self.root, 3, page["next_before"]))
        self.assertEqual(([m.text for m in older["messages"]], older["next_before"]), (["r0", "r1"], None))
        self.assertEqual(fired(self._page(self.root + 1, 50, None))["root"].seq, self.root)  # a reply's seq

    def _page(self, seq, limit, before):
        return ensureDeferred(self.chat.threads.page("lobby", seq, limit, before))


class ReactionTests(ChatTestCase):
    def setUp(self):
        super().setUp()
        self.chat.user("root")
        self.alice, self.bob = self.chat.in_lobby("alice", "bob")
        self.seq = self.chat.say(self.alice, "hi")["seq"]
        self.alice.take()
        self.bob.take()

    def react(self, conn, emoji="👍", on=True, seq=None, room="lobby"):
        self.chat.send(conn, type="react", room=room, seq=self.seq if seq is None else seq, emoji=emoji, on=on)
        self.clock.advance(0)

    def test_a_reaction_reaches_everyone_and_is_stored_in_order(self):
        """``reaction`` goes to every member, the reacting user included; history shows users in order."""
        self.react(self.bob)
        self.react(self.alice)
        for conn in (self.alice, self.bob):
            self.assertEqual([(f["user"], f["emoji"], f["on"], f["seq"]) for f in conn.of_type("reaction")],
                             [("bob", "👍", True, self.seq), ("alice", "👍", True, self.seq)])
        carol = self.chat.connect("carol")
        self.assertEqual(self.chat.join(carol)["history"][-1]["reactions"], {"👍": ["bob", "alice"]})

    def test_adding_twice_or_removing_what_is_absent_changes_nothing(self):
        """A repeat add and a removal of a missing reaction send nothing; removing one tells everyone."""
        self.react(self.bob)
        self.react(self.bob)
        self.react(self.bob, "🎉", on=False)
        self.assertEqual(len(self.alice.of_type("reaction")), 1)
        self.react(self.bob, on=False)
        self.assertEqual(self.alice.last("reaction")["on"], False)
        self.assertNotIn("reactions", self.chat.join(self.chat.connect("carol"))["history"][-1])
        self.assertEqual(self.bob.of_type("error"), [])

    def test_bad_emoji_or_fields_are_invalid_frame(self):
        """Emoji empty, longer than 32, with whitespace, or not a string; a missing ``on`` or ``seq``: invalid_frame."""
        for emoji in ("", "x" * 33, "a b", "a\tb", 5, None):
            self.react(self.bob, emoji)
            self.assertEqual(self.bob.last("error")["code"], "invalid_frame", emoji)
        self.chat.send(self.bob, type="react", room="lobby", seq=self.seq, emoji="x")
        self.assertEqual(self.bob.last("error")["code"], "invalid_frame")
        self.chat.send(self.bob, type="react", room="lobby", emoji="x", on=True)
        self.assertEqual(self.bob.last("error")["code"], "invalid_frame")
        self.react(self.bob, "x" * 32)
        self.assertEqual(self.alice.last("reaction")["emoji"], "x" * 32)

    def test_at_most_twenty_distinct_emoji(self):
        """The 21st distinct emoji is too_large; one already there may still be added by someone else."""
        for n in range(MAX_EMOJI_KINDS):
            self.react(self.bob, f"e{n}")
        self.react(self.bob, "one-more")
        self.assertEqual(self.bob.last("error")["code"], "too_large")
        self.react(self.alice, "e0")
        self.assertEqual(self.bob.last("reaction")["user"], "alice")

    def test_missing_or_deleted_message_is_not_found_and_tombstone_has_none(self):
        """No such seq, or a deleted message: not_found; deleting drops the reactions from history."""
        self.react(self.bob, seq=99)
        self.assertEqual(self.bob.last("error")["code"], "not_found")
        self.react(self.bob)
        fired(self.store.update_message("lobby", self.seq, {"deleted": True, "text": None, "reactions": None}))
        self.chat.rooms.forget("lobby")
        self.react(self.alice)
        self.assertEqual(self.alice.last("error")["code"], "not_found")
        tomb = self.chat.join(self.chat.connect("carol"))["history"][-1]
        self.assertEqual((tomb.get("deleted"), "reactions" in tomb), (True, False))

    def test_a_rename_shows_in_cached_reactions(self):
        """After bob is renamed, the cached history shows his new name in the reactions he made."""
        self.react(self.bob)
        self.chat.events.user_renamed(self.bob.user_id, "robert")
        history = self.chat.join(self.chat.connect("carol"))["history"]
        self.assertEqual(history[-1]["reactions"], {"👍": ["robert"]})

    def test_only_members_react(self):
        """A user who is not a member of a public room gets forbidden (joining is not needed, membership is)."""
        carol = self.chat.connect("carol")
        self.react(carol)
        self.assertEqual(carol.last("error")["code"], "forbidden")
        self.assertEqual(self.alice.of_type("reaction"), [])

    def test_a_non_member_of_a_private_room_gets_not_found(self):
        """In a private room a non-member is told not_found, as if the room did not exist."""
        fired(self.store.create_room("secret", "private", "", self.alice.user_id, None))
        carol = self.chat.connect("carol")
        self.react(carol, room="secret", seq=1)
        self.assertEqual(carol.last("error")["code"], "not_found")


class AcrossProcesses(TwoProcesses):
    def test_reactions_and_threads_reach_the_other_process(self):
        """A reply and a reaction on A reach B's sockets as ``thread`` and ``reaction``, and B's cached history."""
        [alice] = self.a.in_lobby("alice")
        [bob] = self.b.in_lobby("bob")
        root = self.a.say(alice, "root")["seq"]
        self.settle()
        self.a.send(alice, type="message", room="lobby", text="re", reply_to=root)
        self.a.send(alice, type="react", room="lobby", seq=root, emoji="👍", on=True)
        self.settle()
        self.assertEqual(bob.last("thread")["replies"], 1)
        self.assertEqual((bob.last("reaction")["user"], bob.last("reaction")["emoji"]), ("alice", "👍"))
        first = self.b.join(self.b.connect("carol"))["history"][0]
        self.assertEqual((first["thread"]["replies"], first["reactions"]), (1, {"👍": ["alice"]}))

    def test_the_same_reaction_from_both_processes_is_stored_once(self):
        """Alice adds the same emoji through A and B at once: one reaction, one ``reaction`` frame each socket."""
        [alice_a] = self.a.in_lobby("alice")
        alice_b = self.b.connect("alice")
        self.b.join(alice_b)
        root = self.a.say(alice_a, "root")["seq"]
        self.settle()
        alice_a.take()
        self.a.send(alice_a, type="react", room="lobby", seq=root, emoji="👍", on=True)
        self.b.send(alice_b, type="react", room="lobby", seq=root, emoji="👍", on=True)
        self.settle()
        self.assertEqual(len(alice_a.of_type("reaction")), 1)
        [stored] = fired(self.store.get_messages("lobby", [root]))
        self.assertEqual((len(stored.reactions), stored.reaction_groups()), (1, {"👍": ["alice"]}))
