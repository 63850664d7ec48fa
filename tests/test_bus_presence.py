"""Presence across processes (chatd.bus.presence), as unit tests of three processes on one Clock and store.

SPEC.md, Several processes and machines: a user is online on every chatd while any of their sockets is open on
any of them; when a chatd dies, the users it alone served go offline everywhere within 15 s. Each socket sees
one online and one offline per user, however many processes serve that user.
"""

from __future__ import annotations

from chatd.bus.leases import LEASE_MS
from chatd.storage.memory import MemoryStore
from tests.chatharness import ChatHarness, ChatTestCase
from tests.fakebus import FakeBusNetwork


def presence(conn, user):
    """The presence events ``conn`` received about ``user`` since the test began (``conn.since``)."""
    return [frame["event"] for frame in conn.sent[getattr(conn, "since", 0):]
            if frame["type"] == "presence" and frame["user"] == user]


class Cluster(ChatTestCase):
    """``self.a`` and ``self.b``: two chatd processes on ``self.store`` and ``self.network``; alice is a member
    of the lobby (her sockets are not open), bob watches the lobby from B and carol from A."""

    def setUp(self):
        super().setUp()
        self.network = FakeBusNetwork(self.clock)
        self.store = MemoryStore()
        self.a = self.process("a")
        self.b = self.process("b")
        self.a.user("root")
        first = self.a.connect("alice")
        self.a.join(first)
        self.a.closed(first)
        [self.bob] = self.b.in_lobby("bob")
        [self.carol] = self.a.in_lobby("carol")
        self.settle()
        for conn in (self.bob, self.carol):
            conn.since = len(conn.sent)

    def process(self, node: str) -> ChatHarness:
        harness = ChatHarness(self.clock, self.store, network=self.network, node=node)
        self.clock.advance(0)  # subscribed, lease taken
        return harness

    def settle(self, seconds: float = 0.5):
        for _ in range(int(seconds / 0.05)):
            self.clock.advance(0.05)


class OnceAcrossTheCluster(Cluster):

    def test_a_user_on_two_processes_comes_online_once_and_goes_offline_once(self):
        """Alice opens a socket on A, then one on B, closes A's, then B's: bob (on B) and carol (on A) each see
        exactly one online and, at the very end, one offline."""
        on_a = self.a.connect("alice")
        self.settle()
        self.assertEqual((presence(self.bob, "alice"), presence(self.carol, "alice")), (["online"], ["online"]))
        on_b = self.b.connect("alice")
        self.settle()
        self.a.closed(on_a)
        self.settle()
        self.assertEqual((presence(self.bob, "alice"), presence(self.carol, "alice")), (["online"], ["online"]))
        self.assertTrue(self.a.presence.is_online(self.a.user("alice").id))
        self.b.closed(on_b)
        self.settle()
        self.assertEqual(presence(self.bob, "alice"), ["online", "offline"])
        self.assertEqual(presence(self.carol, "alice"), ["online", "offline"])
        self.assertFalse(self.a.presence.is_online(self.a.user("alice").id))

    def test_opening_on_both_processes_at_once_still_shows_one_online(self):
        """Alice's sockets open on A and B in the same instant (neither has heard of the other): one online each."""
        self.a.connect("alice")
        self.b.connect("alice")
        self.settle()
        self.assertEqual((presence(self.bob, "alice"), presence(self.carol, "alice")), (["online"], ["online"]))

    def test_who_is_online_counts_the_other_processes_users_once(self):
        """With alice on A and on B and bob on B: A's joined frame lists both once, the room counts 3 online with
        carol, and the accounts see alice online on either process."""
        self.a.connect("alice")
        self.b.connect("alice")
        self.settle()
        dave = self.a.connect("dave")
        joined = self.a.join(dave)
        self.settle()
        self.assertEqual(joined["members"], ["alice", "bob", "carol", "dave"])
        self.assertEqual(self.b.presence.online_count("lobby"), 4)
        self.assertIn(self.a.user("bob").id, self.a.presence.online_user_ids())
        self.assertTrue(self.b.presence.is_online(self.a.user("dave").id))

    def test_joins_leaves_and_renames_elsewhere_change_who_is_listed(self):
        """Dave (on A) joins the lobby after coming online: B counts him there; renamed, B lists his new name."""
        dave = self.a.connect("dave")
        self.settle()
        self.assertNotIn("dave", self.b.presence.online_members("lobby"))
        self.a.join(dave)
        self.settle()
        self.assertIn("dave", self.b.presence.online_members("lobby"))
        self.a.events.user_renamed(dave.user_id, "david")
        self.settle()
        self.assertIn("david", self.b.presence.online_members("lobby"))
        self.assertNotIn("dave", self.b.presence.online_members("lobby"))

    def test_a_process_started_later_learns_who_is_online(self):
        """C starts after alice came online on A: C's sockets see her in the lobby without any online event."""
        self.a.connect("alice")
        self.settle()
        c = self.process("c")
        self.settle()
        [erin] = c.in_lobby("erin")
        self.assertEqual(c.presence.online_members("lobby"), ["alice", "bob", "carol", "erin"])
        self.assertEqual(presence(erin, "alice"), [])


class DeadProcesses(Cluster):

    def test_the_users_of_a_dead_process_go_offline_elsewhere_within_15_seconds(self):
        """A dies (no close, no word) with alice's only socket: bob on B sees her offline once, after the lease
        ends and within 15 s; B no longer counts her."""
        self.a.connect("alice")
        self.settle()
        self.network.crash(self.a.events.bus)
        self.settle(LEASE_MS / 1000 / 2)
        self.assertEqual(presence(self.bob, "alice"), ["online"])
        self.settle(15 - LEASE_MS / 1000 / 2)
        self.assertEqual(presence(self.bob, "alice"), ["online", "offline"])
        self.assertFalse(self.b.presence.is_online(self.a.user("alice").id))
        self.assertEqual(self.b.presence.online_members("lobby"), ["bob"])

    def test_a_user_also_on_a_living_process_stays_online_when_the_other_dies(self):
        """Alice has a socket on A and one on B; A dies: bob sees no offline, she stays online on B."""
        self.a.connect("alice")
        self.b.connect("alice")
        self.settle()
        self.network.crash(self.a.events.bus)
        self.settle(15)
        self.assertEqual(presence(self.bob, "alice"), ["online"])
        self.assertTrue(self.b.presence.is_online(self.a.user("alice").id))

    def test_a_process_that_stops_gives_its_lease_back(self):
        """A stopping releases its lease at once, and its sockets' closes say their users went offline."""
        self.a.connect("alice")
        self.settle()
        self.a.events.server_stopping()
        self.assertNotIn("a", self.network.leases)
        self.assertIn("b", self.network.leases)

    def test_a_process_the_others_thought_dead_says_again_who_it_holds(self):
        """A stalls past its lease (B drops alice: offline); when A runs again, its next renewal finds the
        lease ended and it tells the others again: bob sees alice online again."""
        self.a.connect("alice")
        self.settle(LEASE_MS / 1000)
        self.network.crash(self.a.events.bus)
        self.settle(15)
        self.assertEqual(presence(self.bob, "alice"), ["online", "offline"])
        self.a.events.bus.connected = True  # A runs again; its connection never dropped
        self.settle(3)
        self.assertEqual(presence(self.bob, "alice"), ["online", "offline", "online"])
        self.assertTrue(self.b.presence.is_online(self.a.user("alice").id))


class BusOutage(Cluster):

    def test_presence_changes_during_an_outage_are_settled_when_the_bus_returns(self):
        """While the bus is down alice leaves A and dave comes online on A and joins the lobby: B hears nothing;
        when the bus is back, bob sees alice offline, and dave's join (kept by A meanwhile) and online, once each."""
        on_a = self.a.connect("alice")
        self.settle()
        self.network.down()
        self.a.closed(on_a)
        dave = self.a.connect("dave")
        self.a.join(dave)
        self.settle(3)
        self.assertEqual(presence(self.bob, "alice"), ["online"])
        self.assertTrue(self.b.presence.is_online(self.a.user("alice").id))
        self.network.back()
        self.settle(15)
        self.assertEqual(presence(self.bob, "alice"), ["online", "offline"])
        self.assertEqual(presence(self.bob, "dave"), ["join", "online"])
        self.assertFalse(self.b.presence.is_online(self.a.user("alice").id))

    def test_a_process_that_died_during_an_outage_is_forgotten_after_the_bus_returns(self):
        """Alice is on A only; the bus goes down, A dies meanwhile, the bus returns with its leases lost (a
        restarted Redis): B drops A's users within the grace of one lease plus 15 s, and bob sees alice offline."""
        self.a.connect("alice")
        self.settle()
        self.network.down()
        self.network.crash(self.a.events.bus)
        self.network.leases.clear()
        self.settle(5)
        self.network.back()
        self.settle(LEASE_MS / 1000 + 15)
        self.assertEqual(presence(self.bob, "alice"), ["online", "offline"])
