"""Unit tests for chatd.chat.registry: who is online, which sockets joined which room (SPEC.md, Details: Membership)."""

from dataclasses import dataclass

from twisted.trial.unittest import SynchronousTestCase

from chatd.chat.registry import Registry


@dataclass(eq=False)
class Conn:
    """A connection as the registry sees it; eq=False so each one hashes by identity."""

    user_id: str
    username: str
    jti: str


class ConnectDisconnectTests(SynchronousTestCase):
    """A user's first socket brings them online, their last one takes them offline."""

    def setUp(self):
        self.registry = Registry()

    def test_first_connection_brings_user_online(self):
        """The first socket of a user is reported as first, and the user is online."""
        conn = Conn("u1", "alice", "j1")
        self.assertFalse(self.registry.is_online("u1"))
        self.assertIs(self.registry.connect(conn, ["lobby"]), True)
        self.assertTrue(self.registry.is_online("u1"))
        self.assertEqual(self.registry.online_user_ids(), ["u1"])
        self.assertEqual(self.registry.connection_count(), 1)

    def test_second_connection_is_not_first(self):
        """A second socket of an online user does not announce them online again."""
        self.registry.connect(Conn("u1", "alice", "j1"), ["lobby"])
        self.assertIs(self.registry.connect(Conn("u1", "alice", "j2"), ["lobby"]), False)
        self.assertEqual(self.registry.connection_count(), 2)
        self.assertEqual(self.registry.online_user_ids(), ["u1"])

    def test_other_users_are_first_independently(self):
        """Each user's first socket is first, whoever else is online."""
        self.assertTrue(self.registry.connect(Conn("u1", "alice", "j1"), []))
        self.assertTrue(self.registry.connect(Conn("u2", "bob", "j2"), []))
        self.assertEqual(sorted(self.registry.online_user_ids()), ["u1", "u2"])

    def test_disconnect_of_not_last_returns_none(self):
        """Closing one of two sockets keeps the user online and announces nothing."""
        first, second = Conn("u1", "alice", "j1"), Conn("u1", "alice", "j1")
        self.registry.connect(first, ["lobby", "dev"])
        self.registry.connect(second, ["lobby", "dev"])
        self.assertIsNone(self.registry.disconnect(first))
        self.assertTrue(self.registry.is_online("u1"))
        self.assertEqual(self.registry.connections_of("u1"), [second])

    def test_disconnect_of_last_returns_member_rooms(self):
        """Closing the last socket takes the user offline and names the rooms to tell."""
        first, second = Conn("u1", "alice", "j1"), Conn("u1", "alice", "j2")
        self.registry.connect(first, ["lobby", "dev"])
        self.registry.connect(second, ["lobby", "dev"])
        self.registry.disconnect(first)
        self.assertEqual(self.registry.disconnect(second), {"lobby", "dev"})
        self.assertFalse(self.registry.is_online("u1"))
        self.assertEqual(self.registry.online_user_ids(), [])

    def test_disconnect_of_unknown_connection_returns_none(self):
        """Closing a socket that never registered announces nothing and breaks nothing."""
        self.registry.connect(Conn("u1", "alice", "j1"), ["lobby"])
        self.assertIsNone(self.registry.disconnect(Conn("u2", "bob", "j9")))
        self.assertEqual(self.registry.connection_count(), 1)
        self.assertEqual(self.registry.online_members("lobby"), ["alice"])

    def test_disconnect_twice_announces_offline_once(self):
        """A repeated close of the last socket does not announce the user offline twice."""
        conn = Conn("u1", "alice", "j1")
        self.registry.connect(conn, ["lobby"])
        self.assertEqual(self.registry.disconnect(conn), {"lobby"})
        self.assertIsNone(self.registry.disconnect(conn))

    def test_nothing_left_behind_after_disconnect(self):
        """After every socket closed, no room, user, token or connection is remembered."""
        a1, a2, b = Conn("u1", "alice", "j1"), Conn("u1", "alice", "j2"), Conn("u2", "bob", "j3")
        self.registry.connect(a1, ["lobby", "dev"])
        self.registry.connect(a2, ["lobby", "dev"])
        self.registry.connect(b, ["lobby"])
        self.registry.subscribe(a1, "lobby")
        self.registry.subscribe(a2, "dev")
        self.registry.subscribe(b, "lobby")
        self.registry.retoken(a2, "j4")
        for conn in (a1, a2, b):
            self.registry.disconnect(conn)
        self.assertEqual(self.registry.connection_count(), 0)
        self.assertEqual(self.registry.online_user_ids(), [])
        for room in ("lobby", "dev"):
            self.assertEqual(list(self.registry.subscribers(room)), [])
            self.assertEqual(self.registry.online_members(room), [])
            self.assertEqual(self.registry.online_count(room), 0)
        for jti in ("j1", "j2", "j3", "j4"):
            self.assertEqual(self.registry.connections_with_token(jti), [])
        self.assertEqual(self.registry.connections_of("u1"), [])
        self.assertFalse(self.registry.is_member("u1", "lobby"))


class OnlineMembersTests(SynchronousTestCase):
    """``members`` in ``joined`` and ``online`` in ``GET /api/rooms``: members online now."""

    def setUp(self):
        self.registry = Registry()

    def test_online_members_sorted_usernames(self):
        """Online members are listed by username, sorted, once per user however many sockets."""
        self.registry.connect(Conn("u3", "carol", "j3"), ["lobby"])
        self.registry.connect(Conn("u1", "alice", "j1"), ["lobby", "dev"])
        self.registry.connect(Conn("u1", "alice", "j1b"), ["lobby", "dev"])
        self.registry.connect(Conn("u2", "bob", "j2"), ["dev"])
        self.assertEqual(self.registry.online_members("lobby"), ["alice", "carol"])
        self.assertEqual(self.registry.online_members("dev"), ["alice", "bob"])
        self.assertEqual(self.registry.online_count("lobby"), 2)
        self.assertEqual(self.registry.online_count("dev"), 2)
        self.assertEqual(self.registry.online_members("nowhere"), [])
        self.assertEqual(self.registry.online_count("nowhere"), 0)

    def test_online_members_sorted_whatever_the_order(self):
        """Many members connecting in an arbitrary order are still listed sorted by username."""
        names = [f"user{n:02d}" for n in range(30)]
        for n, name in enumerate(reversed(names)):
            self.registry.connect(Conn(f"id{(n * 7) % 30}", name, f"j{n}"), ["big"])
        self.assertEqual(self.registry.online_members("big"), names)

    def test_offline_user_leaves_online_members(self):
        """A user whose last socket closed is no longer among the online members."""
        alice, bob = Conn("u1", "alice", "j1"), Conn("u2", "bob", "j2")
        self.registry.connect(alice, ["lobby"])
        self.registry.connect(bob, ["lobby"])
        self.registry.disconnect(alice)
        self.assertEqual(self.registry.online_members("lobby"), ["bob"])
        self.assertEqual(self.registry.online_count("lobby"), 1)

    def test_became_member_counts_online_user(self):
        """Joining a room makes an online user one of its online members."""
        self.registry.connect(Conn("u1", "alice", "j1"), [])
        self.assertFalse(self.registry.is_member("u1", "lobby"))
        self.registry.became_member("u1", "lobby")
        self.assertTrue(self.registry.is_member("u1", "lobby"))
        self.assertEqual(self.registry.online_members("lobby"), ["alice"])
        self.assertEqual(self.registry.online_count("lobby"), 1)

    def test_became_member_makes_room_part_of_offline_announcement(self):
        """A room joined during the session is among the rooms told when the user goes offline."""
        conn = Conn("u1", "alice", "j1")
        self.registry.connect(conn, ["lobby"])
        self.registry.became_member("u1", "dev")
        self.assertEqual(self.registry.disconnect(conn), {"lobby", "dev"})
        self.assertEqual(self.registry.online_members("dev"), [])

    def test_became_member_of_offline_user_is_ignored(self):
        """Membership of a user with no socket is not tracked as online."""
        self.registry.became_member("u9", "lobby")
        self.assertFalse(self.registry.is_member("u9", "lobby"))
        self.assertEqual(self.registry.online_members("lobby"), [])
        self.assertFalse(self.registry.is_online("u9"))

    def test_stopped_being_member(self):
        """Leaving a room removes the user from its online members and from the offline announcement."""
        conn = Conn("u1", "alice", "j1")
        self.registry.connect(conn, ["lobby", "dev"])
        self.registry.stopped_being_member("u1", "lobby")
        self.assertFalse(self.registry.is_member("u1", "lobby"))
        self.assertTrue(self.registry.is_member("u1", "dev"))
        self.assertEqual(self.registry.online_members("lobby"), [])
        self.assertEqual(self.registry.online_count("lobby"), 0)
        self.assertEqual(self.registry.disconnect(conn), {"dev"})

    def test_stopped_being_member_keeps_other_members(self):
        """One member leaving leaves the others listed."""
        self.registry.connect(Conn("u1", "alice", "j1"), ["lobby"])
        self.registry.connect(Conn("u2", "bob", "j2"), ["lobby"])
        self.registry.stopped_being_member("u1", "lobby")
        self.assertEqual(self.registry.online_members("lobby"), ["bob"])

    def test_later_connection_does_not_change_known_rooms(self):
        """The rooms given with a user's second socket do not replace what the first one registered."""
        self.registry.connect(Conn("u1", "alice", "j1"), ["lobby"])
        self.registry.connect(Conn("u1", "alice", "j2"), ["other"])
        self.assertEqual(self.registry.online_members("lobby"), ["alice"])
        self.assertEqual(self.registry.online_members("other"), [])


class SubscriptionTests(SynchronousTestCase):
    """A socket receives a room's frames only after it sent ``join`` for that room."""

    def setUp(self):
        self.registry = Registry()
        self.alice = Conn("u1", "alice", "j1")
        self.alice2 = Conn("u1", "alice", "j1")
        self.bob = Conn("u2", "bob", "j2")
        for conn in (self.alice, self.alice2, self.bob):
            self.registry.connect(conn, ["lobby"])

    def test_member_without_join_is_not_subscribed(self):
        """Being a member does not make a socket receive the room's frames."""
        self.assertFalse(self.registry.has_joined(self.alice, "lobby"))
        self.assertEqual(list(self.registry.subscribers("lobby")), [])

    def test_subscribe(self):
        """A socket that joined receives the room's frames; the user's other socket does not."""
        self.registry.subscribe(self.alice, "lobby")
        self.assertTrue(self.registry.has_joined(self.alice, "lobby"))
        self.assertFalse(self.registry.has_joined(self.alice2, "lobby"))
        self.assertEqual(set(self.registry.subscribers("lobby")), {self.alice})

    def test_subscribe_twice_does_not_duplicate(self):
        """A second join on the same socket does not duplicate delivery."""
        self.registry.subscribe(self.alice, "lobby")
        self.registry.subscribe(self.alice, "lobby")
        self.assertEqual(len(self.registry.subscribers("lobby")), 1)

    def test_subscribers_by_room(self):
        """Each room lists exactly the sockets that joined it."""
        self.registry.subscribe(self.alice, "lobby")
        self.registry.subscribe(self.bob, "lobby")
        self.registry.subscribe(self.bob, "dev")
        self.assertEqual(set(self.registry.subscribers("lobby")), {self.alice, self.bob})
        self.assertEqual(set(self.registry.subscribers("dev")), {self.bob})
        self.assertEqual(list(self.registry.subscribers("empty")), [])

    def test_unsubscribe(self):
        """After leaving, a socket no longer receives the room's frames; others still do."""
        self.registry.subscribe(self.alice, "lobby")
        self.registry.subscribe(self.bob, "lobby")
        self.registry.unsubscribe(self.alice, "lobby")
        self.assertFalse(self.registry.has_joined(self.alice, "lobby"))
        self.assertEqual(set(self.registry.subscribers("lobby")), {self.bob})
        self.registry.unsubscribe(self.bob, "lobby")
        self.assertEqual(list(self.registry.subscribers("lobby")), [])

    def test_unsubscribe_not_joined_is_harmless(self):
        """Unsubscribing a socket that never joined (or is gone) changes nothing."""
        self.registry.subscribe(self.bob, "lobby")
        self.registry.unsubscribe(self.alice, "lobby")
        self.registry.unsubscribe(Conn("u7", "zed", "j7"), "lobby")
        self.assertEqual(set(self.registry.subscribers("lobby")), {self.bob})

    def test_disconnect_unsubscribes(self):
        """A closed socket stops receiving every room it joined."""
        self.registry.subscribe(self.alice, "lobby")
        self.registry.subscribe(self.alice, "dev")
        self.registry.subscribe(self.bob, "lobby")
        self.registry.disconnect(self.alice)
        self.assertFalse(self.registry.has_joined(self.alice, "lobby"))
        self.assertEqual(set(self.registry.subscribers("lobby")), {self.bob})
        self.assertEqual(list(self.registry.subscribers("dev")), [])


class TokenTests(SynchronousTestCase):
    """Sockets by user and by token, for revocation and bans (close 4001/4003)."""

    def setUp(self):
        self.registry = Registry()

    def test_connections_of_user(self):
        """Every open socket of a user is found, and only theirs."""
        a1, a2, b = Conn("u1", "alice", "j1"), Conn("u1", "alice", "j2"), Conn("u2", "bob", "j3")
        for conn in (a1, a2, b):
            self.registry.connect(conn, [])
        self.assertEqual(set(self.registry.connections_of("u1")), {a1, a2})
        self.assertEqual(self.registry.connections_of("u2"), [b])
        self.assertEqual(self.registry.connections_of("nobody"), [])

    def test_connections_with_token(self):
        """Every socket opened with a token is found by its jti, and only those."""
        a1, a2, a3 = Conn("u1", "alice", "j1"), Conn("u1", "alice", "j1"), Conn("u1", "alice", "j2")
        for conn in (a1, a2, a3):
            self.registry.connect(conn, [])
        self.assertEqual(set(self.registry.connections_with_token("j1")), {a1, a2})
        self.assertEqual(self.registry.connections_with_token("j2"), [a3])
        self.assertEqual(self.registry.connections_with_token("unknown"), [])

    def test_retoken_moves_connection(self):
        """After a refresh the socket belongs to the new token, not the old one."""
        a1, a2 = Conn("u1", "alice", "old"), Conn("u1", "alice", "old")
        self.registry.connect(a1, [])
        self.registry.connect(a2, [])
        self.registry.retoken(a1, "new")
        self.assertEqual(a1.jti, "new")
        self.assertEqual(self.registry.connections_with_token("new"), [a1])
        self.assertEqual(self.registry.connections_with_token("old"), [a2])
        self.registry.retoken(a2, "new")
        self.assertEqual(self.registry.connections_with_token("old"), [])
        self.assertEqual(set(self.registry.connections_with_token("new")), {a1, a2})

    def test_disconnect_after_retoken_forgets_new_token(self):
        """A refreshed socket that closes is no longer found by its new token."""
        conn = Conn("u1", "alice", "old")
        self.registry.connect(conn, [])
        self.registry.retoken(conn, "new")
        self.registry.disconnect(conn)
        self.assertEqual(self.registry.connections_with_token("new"), [])
        self.assertEqual(self.registry.connections_with_token("old"), [])


class ClosedWhileJoiningTests(SynchronousTestCase):
    def test_subscribing_a_closed_connection_does_nothing(self):
        """A join that finishes after its socket closed leaves no subscription behind and raises nothing."""
        registry = Registry()
        conn = Conn("u1", "alice", "j1")
        registry.connect(conn, [])
        registry.disconnect(conn)
        registry.subscribe(conn, "lobby")
        self.assertEqual(list(registry.subscribers("lobby")), [])
        self.assertFalse(registry.has_joined(conn, "lobby"))
