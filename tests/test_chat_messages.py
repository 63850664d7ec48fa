"""Sending messages on the chat harness (SPEC.md: the ``message`` frame, ``ack``, Guarantees, Idempotency).

A message is acked only once stored; everyone who joined the room gets it in ``seq`` order, the sender
its copy and its ack; a ``client_id`` is stored once per room and user; refusals carry the ``ref``.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred

from chatd.storage.memory import MemoryStore
from tests.chatharness import ChatHarness, ChatTestCase, fired


class GatedStore(MemoryStore):
    """A MemoryStore whose answers to the methods named in ``gated`` wait until ``release`` (what they
    do is done at once: only the caller hears of it later, as from a slow store)."""

    def __init__(self):
        super().__init__()
        self.gated: set[str] = set()
        self.waiting: list[tuple[Deferred, Deferred]] = []

    def _held(self, name: str, answer: Deferred) -> Deferred:
        if name not in self.gated:
            return answer
        later: Deferred = Deferred()
        self.waiting.append((later, answer))
        return later

    def insert_messages(self, messages):
        return self._held("insert_messages", super().insert_messages(messages))

    def add_membership(self, room, user_id, joined_at, joined_seq):
        return self._held("add_membership", super().add_membership(room, user_id, joined_at, joined_seq))

    def release(self):
        """Let every held answer through, in the order the calls were made."""
        waiting, self.waiting = self.waiting, []
        for later, answer in waiting:
            answer.chainDeferred(later)


class MessagesTestCase(ChatTestCase):
    """Alice and Bob, each with one socket that joined the lobby."""

    def make_store(self):
        return GatedStore()

    def setUp(self):
        super().setUp()
        self.alice, self.bob = self.chat.in_lobby("alice", "bob")

    def stored(self, room: str = "lobby") -> list[tuple[int, str]]:
        """(seq, text) of every message the store holds for ``room``, as REST history would list them."""
        return [(m.seq, m.text) for m in fired(self.store.get_messages(room, list(range(1, 200))))]


class SendTests(MessagesTestCase):
    def test_sender_gets_its_copy_and_the_ack_the_others_the_message(self):
        """A message reaches every joined socket, the sender's included, with its author's username and
        user_id; the sender then gets an ``ack`` with the ``client_id``, seq, id and the same ``ts``."""
        self.chat.say(self.alice, "hi bob", client_id="c1")
        message, ack = self.alice.take()
        self.assertEqual({k: message[k] for k in ("type", "room", "seq", "id", "user", "user_id", "text", "client_id")},
                         {"type": "message", "room": "lobby", "seq": 1, "id": "lobby:1", "user": "alice",
                          "user_id": self.alice.user_id, "text": "hi bob", "client_id": "c1"})
        self.assertEqual(ack, {"type": "ack", "client_id": "c1", "room": "lobby", "seq": 1, "id": "lobby:1",
                               "ts": message["ts"]})
        self.assertEqual(self.bob.take(), [message])

    def test_ack_without_client_id_says_null(self):
        """A message sent without ``client_id`` is acked with ``client_id: null`` and broadcast without one."""
        ack = self.chat.say(self.bob, "hello alice")
        self.assertEqual((ack["client_id"], ack["seq"]), (None, 1))
        self.assertNotIn("client_id", self.alice.last("message"))

    def test_acked_only_once_stored(self):
        """Until the store has answered the write nobody gets the message and its sender gets no ack; once it
        has, both come."""
        self.store.gated.add("insert_messages")
        self.chat.send(self.alice, type="message", room="lobby", text="wait for it", client_id="w")
        self.chat.flush()
        self.assertEqual((self.alice.take(), self.bob.take()), ([], []))
        self.store.release()
        self.assertEqual([f["type"] for f in self.alice.take()], ["message", "ack"])
        self.assertEqual([f["text"] for f in self.bob.take()], ["wait for it"])

    def test_concurrent_senders_get_gap_free_ordered_seqs(self):
        """Three sockets sending at once: every receiver sees seq 1..60 once each, in order, and each
        sender's acks come in its sending order with the seqs its texts were given."""
        carol = self.chat.connect("carol")
        self.chat.join(carol)
        senders = [self.alice, self.bob, carol]
        for conn in senders:
            conn.take()
        for n in range(20):
            for i, conn in enumerate(senders):
                self.chat.send(conn, type="message", room="lobby", text=f"{i}-{n}", client_id=f"{i}-{n}")
        self.chat.flush()
        for i, conn in enumerate(senders):
            received = conn.of_type("message")
            self.assertEqual([m["seq"] for m in received], list(range(1, 61)))
            by_text = {m["text"]: m["seq"] for m in received}
            self.assertEqual([(a["client_id"], a["seq"]) for a in conn.of_type("ack")],
                             [(f"{i}-{n}", by_text[f"{i}-{n}"]) for n in range(20)])

    def test_frames_are_handled_in_order_a_message_sees_its_join(self):
        """A ``message`` sent right after ``join``, while the join still waits for the store, is handled
        after the join (not refused with ``not_in_room``) and delivered to the joiner too."""
        carol = self.chat.connect("carol")
        self.store.gated.add("add_membership")
        self.chat.send(carol, type="join", room="lobby")
        self.chat.send(carol, type="message", room="lobby", text="first words", client_id="f")
        self.assertEqual(carol.types(), [])
        self.store.release()
        self.chat.flush()
        self.assertEqual(carol.types(), ["joined", "message", "ack"])
        self.assertEqual(self.alice.last("message")["text"], "first words")


class IdempotencyTests(MessagesTestCase):
    def test_resent_client_id_is_stored_once(self):
        """The same ``client_id`` again (at once, later, or from a new socket of the same user) is acked with
        the original seq and id and not broadcast again; the history holds it once."""
        for _ in range(2):
            self.chat.send(self.alice, type="message", room="lobby", text="once", client_id="same")
        self.chat.flush()
        first, second = self.alice.of_type("ack")
        self.assertEqual((first["seq"], second["seq"], first["id"]), (1, 1, second["id"]))
        self.assertEqual(self.chat.say(self.alice, "once", client_id="same")["seq"], 1)
        self.chat.closed(self.alice)
        again = self.chat.connect("alice")
        self.chat.join(again)
        self.assertEqual(self.chat.say(again, "once", client_id="same")["seq"], 1)
        self.assertEqual([m["text"] for m in self.bob.of_type("message")], ["once"])
        self.assertEqual(self.stored(), [(1, "once")])

    def test_resend_after_a_restart_is_found_in_the_store(self):
        """A chatd started afresh on the same store (nothing in memory) acks a resent ``client_id`` with its
        original seq, and the next message takes the next seq."""
        original = self.chat.say(self.alice, "durable", client_id="k1")
        restarted = ChatHarness(self.clock, self.store)
        alice = restarted.connect("alice")
        restarted.join(alice)
        again = restarted.say(alice, "durable", client_id="k1")
        self.assertEqual((again["seq"], again["id"]), (original["seq"], original["id"]))
        self.assertEqual(restarted.say(alice, "next", client_id="k2")["seq"], original["seq"] + 1)

    def test_client_id_is_kept_per_room_and_user(self):
        """The same ``client_id`` from another user, or in another room, is a new message."""
        self.chat.join(self.alice, "side")
        self.assertEqual(self.chat.say(self.alice, "a", client_id="x")["seq"], 1)
        self.assertEqual(self.chat.say(self.bob, "b", client_id="x")["seq"], 2)
        self.assertEqual(self.chat.say(self.alice, "c", room="side", client_id="x")["seq"], 1)

    def test_store_outage_is_an_error_with_ref_then_a_resend_is_stored_once(self):
        """While the store is away a message is answered ``unavailable`` with its ``client_id`` as ``ref``,
        never acked nor broadcast; resent after the outage it is stored once."""
        self.store.down = True
        error = self.chat.say(self.alice, "during the outage", client_id="x1")
        self.assertEqual((error["type"], error["code"], error["ref"]), ("error", "unavailable", "x1"))
        self.assertEqual((self.alice.of_type("ack"), self.bob.of_type("message")), ([], []))
        self.store.down = False
        self.assertEqual(self.chat.say(self.alice, "during the outage", client_id="x1")["seq"], 1)
        self.assertEqual(self.chat.say(self.alice, "during the outage", client_id="x1")["seq"], 1)
        self.assertEqual(self.stored(), [(1, "during the outage")])
        self.assertEqual(len(self.bob.of_type("message")), 1)


class RefusedMessageTests(MessagesTestCase):
    def test_text_limits_count_code_points_and_refusals_carry_ref(self):
        """Text is 1-4000 code points: 4000 ``é`` (8000 bytes) is stored; empty is ``invalid_frame`` and
        4001 characters ``too_large``, each with the ``client_id`` as ``ref``; nothing refused is stored."""
        self.assertEqual(self.chat.say(self.alice, "é" * 4000)["type"], "ack")
        for text, code in (("", "invalid_frame"), ("x" * 4001, "too_large")):
            error = self.chat.say(self.alice, text, client_id=code)
            self.assertEqual((error["type"], error["code"], error["ref"]), ("error", code, code))
        self.assertEqual(len(self.stored()), 1)
        self.assertEqual(len(self.bob.of_type("message")), 1)

    def test_not_in_room_carries_ref(self):
        """A message for a room the socket has not joined is ``not_in_room`` with its ``client_id`` as ``ref``."""
        error = self.chat.say(self.alice, "hello?", room="elsewhere", client_id="e1")
        self.assertEqual((error["code"], error["ref"]), ("not_in_room", "e1"))
        self.assertEqual(self.stored("elsewhere"), [])
