"""Two chatd processes on one store and one bus (chatd.bus.events), as unit tests on a Clock.

SPEC.md, Several processes and machines: every chatd sees every other chatd's room frames as if they had
happened on it, in seq order, without gaps or duplicates, also across a restart of the bus; account changes
close sockets on every chatd.
"""

from __future__ import annotations

from datetime import datetime, timezone

from chatd.storage.memory import MemoryStore
from tests.chatharness import START, ChatHarness, ChatTestCase, fired
from tests.fakebus import FakeBusNetwork


class TwoProcesses(ChatTestCase):
    """``self.a`` and ``self.b``: two chatd processes sharing ``self.store`` and ``self.network``."""

    def setUp(self):
        super().setUp()
        self.network = FakeBusNetwork(self.clock)
        self.store = MemoryStore()
        self.a = ChatHarness(self.clock, self.store, network=self.network, node="a")
        self.b = ChatHarness(self.clock, self.store, network=self.network, node="b")
        self.clock.advance(0)  # both subscribed
        self.a.user("root")  # the first account is the admin

    def seqs(self, conn, room="lobby"):
        return [frame["seq"] for frame in conn.sent if frame["type"] == "message" and frame["room"] == room]

    def settle(self, seconds: float = 0.5):
        """Let announcements travel and writers write (a few turns of the clock)."""
        for _ in range(int(seconds / 0.01)):
            self.clock.advance(0.01)


class MessageTests(TwoProcesses):

    def test_a_message_sent_on_one_process_reaches_the_others_sockets(self):
        """Alice on A sends; Bob on B gets the message frame (with its seq and author) once, and A's ack is alice's."""
        [alice] = self.a.in_lobby("alice")
        [bob] = self.b.in_lobby("bob")
        ack = self.a.say(alice, "hello from A")
        self.settle()
        [frame] = bob.of_type("message")
        self.assertEqual((frame["seq"], frame["user"], frame["text"]), (ack["seq"], "alice", "hello from A"))
        self.assertEqual(self.b.rooms.peek("lobby").last_seq, ack["seq"])

    def test_senders_on_both_processes_every_socket_sees_every_seq_once_in_order(self):
        """Alice on A and Bob on B send 30 messages each, interleaved: every socket on both sides sees 1..60
        exactly once, in order, and history agrees."""
        alice, carol = self.a.in_lobby("alice", "carol")
        bob, dave = self.b.in_lobby("bob", "dave")
        for n in range(30):
            self.a.send(alice, type="message", room="lobby", text=f"a{n}", client_id=f"a{n}")
            self.b.send(bob, type="message", room="lobby", text=f"b{n}", client_id=f"b{n}")
            self.clock.advance(0.004)
        self.settle(2)
        for conn in (alice, carol, bob, dave):
            self.assertEqual(self.seqs(conn), list(range(1, 61)), conn.username)
        acks = [frame["client_id"] for frame in alice.of_type("ack")] + [frame["client_id"] for frame in bob.of_type("ack")]
        self.assertEqual(sorted(acks), sorted([f"a{n}" for n in range(30)] + [f"b{n}" for n in range(30)]))

    def test_a_resend_of_a_client_id_stored_through_the_other_process_is_acked_with_the_original(self):
        """Alice's message stored via A, resent via B with the same client_id: B acks the original seq and
        nobody sees it twice."""
        [alice_a] = self.a.in_lobby("alice")
        alice_b = self.b.connect("alice")
        self.b.join(alice_b)
        first = self.a.say(alice_a, "once", client_id="c1")
        self.settle()
        again = self.b.say(alice_b, "once", client_id="c1")
        self.settle()
        self.assertEqual(again["seq"], first["seq"])
        self.assertEqual(self.seqs(alice_b), [first["seq"]])

    def test_edits_deletions_typing_reads_and_presence_cross_over(self):
        """An edit, a deletion, typing, a read receipt and a join made on A are told to B's sockets; B's cached
        history shows the edit."""
        [alice] = self.a.in_lobby("alice")
        [bob] = self.b.in_lobby("bob")
        ack = self.a.say(alice, "typo")
        self.settle()
        bob.take()
        self.a.events.message_edited("lobby", ack["seq"], "fixed", datetime.fromtimestamp(START, timezone.utc))
        self.a.send(alice, type="typing", room="lobby", typing=True)
        self.a.send(alice, type="read", room="lobby", seq=ack["seq"])
        carol = self.a.connect("carol")
        self.a.join(carol)
        self.settle()
        kinds = [frame["type"] for frame in bob.take()]
        self.assertEqual(kinds, ["edited", "typing", "read", "presence"])
        [entry] = self.b.rooms.peek("lobby").cached(ack["seq"] - 1, ack["seq"])
        self.assertEqual(entry.message.text, "fixed")
        self.a.events.message_deleted("lobby", ack["seq"])
        self.settle()
        self.assertEqual(bob.sent[-1], {"type": "deleted", "room": "lobby", "seq": ack["seq"]})


class AccountTests(TwoProcesses):

    def test_logout_ban_and_rename_on_one_process_act_on_the_others_sockets(self):
        """A token revoked on A closes its socket on B (4001); a ban closes all of a user's sockets on B (4003);
        a rename renames them."""
        bob = self.b.connect("bob")
        carol = self.b.connect("carol")
        dave = self.b.connect("dave")
        self.a.events.token_revoked(bob.jti)
        self.a.events.user_banned(carol.user_id)
        self.a.events.user_renamed(dave.user_id, "david")
        self.settle()
        self.assertEqual((bob.closes, carol.closes), ([(4001, "token revoked")], [(4003, "banned")]))
        self.assertEqual(dave.sock.username, "david")


class OutageTests(TwoProcesses):

    def test_while_the_bus_is_down_messages_come_from_the_store_then_live_again(self):
        """Bus down: A's messages reach B within about a second (B reads the store); bus back: live again;
        B saw every seq once, in order."""
        [alice] = self.a.in_lobby("alice")
        [bob] = self.b.in_lobby("bob")
        self.a.say(alice, "before")
        self.settle()
        self.network.down()
        self.a.say(alice, "during 1")
        self.a.say(alice, "during 2")
        self.settle(0.3)
        self.assertEqual(self.seqs(bob), [1])
        self.settle(1.2)
        self.assertEqual(self.seqs(bob), [1, 2, 3])
        self.network.back()
        self.a.say(alice, "after")
        self.settle()
        self.assertEqual(self.seqs(bob), [1, 2, 3, 4])

    def test_announcements_lost_while_only_the_sender_was_cut_off_are_read_when_it_returns(self):
        """A alone loses the bus (B does not notice, so B does not poll): when A is back it tells B which rooms
        it wrote to, and B reads them from the store."""
        [alice] = self.a.in_lobby("alice")
        [bob] = self.b.in_lobby("bob")
        bus_a = self.network.buses[0]
        bus_a.connected = False
        self.a.events._state(False)
        self.a.say(alice, "while A was cut off")
        self.settle(0.3)
        self.assertEqual(self.seqs(bob), [])
        bus_a.connected = True
        self.a.events._state(True)
        self.settle()
        self.assertEqual(self.seqs(bob), [1])

    def test_edits_and_account_events_made_while_the_bus_is_down_go_out_when_it_returns(self):
        """During an outage A edits a message and revokes bob's token: B's socket hears neither until the bus
        returns, then gets the edit and closes bob's socket; B's cached history shows the edit. Typing made
        during the outage is not replayed."""
        [alice] = self.a.in_lobby("alice")
        [bob] = self.b.in_lobby("bob")
        ack = self.a.say(alice, "typo")
        self.settle()
        bob.take()
        self.assertIn(b"typo", fired(self.b.history.page("lobby", 10, None))["messages"][0])  # cached on B
        self.network.down()
        edited_at = datetime.fromtimestamp(START, timezone.utc)
        fired(self.store.update_message("lobby", ack["seq"], {"text": "fixed", "edited_at": edited_at}))
        self.a.events.message_edited("lobby", ack["seq"], "fixed", edited_at)  # as the editor does after storing
        self.a.send(alice, type="typing", room="lobby", typing=True)
        self.a.events.token_revoked(bob.jti)
        self.settle(2)
        self.assertEqual((bob.take(), bob.closes), ([], []))
        self.network.back()
        self.settle()
        self.assertEqual([frame["type"] for frame in bob.take()], ["edited"])
        self.assertEqual(bob.closes, [(4001, "token revoked")])
        self.assertIn(b"fixed", fired(self.b.history.page("lobby", 10, None))["messages"][0])

    def test_after_an_outage_cached_history_is_read_again_from_the_store(self):
        """An edit stored during an outage by a process that never got to announce it: once the bus is back,
        B's history shows the store's text, not its cached one."""
        [alice] = self.a.in_lobby("alice")
        self.b.in_lobby("bob")
        ack = self.a.say(alice, "typo")
        self.settle()
        self.assertIn(b"typo", fired(self.b.history.page("lobby", 10, None))["messages"][0])
        self.network.down()
        edited_at = datetime.fromtimestamp(START, timezone.utc)
        fired(self.store.update_message("lobby", ack["seq"], {"text": "fixed", "edited_at": edited_at}))
        self.network.back()
        self.settle()
        self.assertIn(b"fixed", fired(self.b.history.page("lobby", 10, None))["messages"][0])
