"""Rooms and roles across two chatd processes on one store and the fake bus (tests.fakebus): invitations,
member and room changes reach the other process's sockets, and a removal there stops the member's live
frames at once, also after a bus outage (SPEC.md: Rooms and roles; Several processes and machines)."""

from __future__ import annotations

from chatd.rooms.access import READ
from chatd.storage.cached import CachedStore
from tests.chatharness import ChatHarness, FakeConnection, fired
from tests.test_bus_events import TwoProcesses


class RoomEventTests(TwoProcesses):
    """olive (owner of the private room ``team``) on A; mem, a member, on B (B reads a CachedStore, as chatd
    does, so a stale cached user would show)."""

    def setUp(self):
        super().setUp()
        self.b = ChatHarness(self.clock, CachedStore(self.store, self.clock), network=self.network, node="b2")
        self.clock.advance(0)
        self.olive = self.a.connect("olive")
        self.principal = fired(self.a.accounts.authenticate(self.olive.token))
        fired(self.a.catalog.create(self.principal, {"name": "team", "visibility": "private"}))
        self.a.join(self.olive, "team")
        self.mem = self.b.connect("mem")
        fired(self.a.members.invite(self.principal, "team", {"user": "mem"}))
        self.settle()

    def reconnect_to_b(self, token: str) -> FakeConnection:
        """A socket of ``token``'s user through B's real handshake (B's CachedStore may have to read the
        user: its misses are fetched on the next turn of the clock)."""
        pending = self.b.accounts.authenticate(token)
        self.clock.advance(0)
        found = fired(pending)
        conn = FakeConnection(found.user.id, found.user.username, found.claims.jti, found.claims.exp,
                              found.claims.iat)
        conn.token = token
        conn.sock = self.b.dispatcher.opened(conn, found)
        return conn

    def test_invited_member_and_room_frames_cross(self):
        """An invitation made on A reaches mem's socket on B (invited), mem may then join on B, and later
        member and room changes made on A reach it."""
        self.assertEqual(self.mem.last("invited")["room"]["name"], "team")
        self.b.join(self.mem, "team")
        self.b.connect("zed")
        fired(self.a.members.invite(self.principal, "team", {"user": "zed"}))
        fired(self.a.catalog.change(self.principal, "team", {"topic": "launch"}))
        self.settle()
        self.assertEqual(self.mem.last("member")["user"], "zed")
        self.assertEqual(self.mem.last("room")["room"]["topic"], "launch")

    def test_removal_on_one_process_stops_the_member_on_the_other_at_once(self):
        """Removed on A, mem's socket on B is told left (removed) and gets no more of the room."""
        self.b.join(self.mem, "team")
        fired(self.a.members.remove(self.principal, "team", "mem"))
        self.settle()
        self.assertEqual(self.mem.last("left"), {"type": "left", "room": "team", "reason": "removed"})
        self.a.say(self.olive, "after", room="team")
        self.settle()
        self.assertNotIn("after", [frame.get("text") for frame in self.mem.sent])
        self.b.send(self.mem, type="join", room="team")
        self.clock.advance(0)  # B's cache reads the user (dropped by the removal) on the next turn
        self.assertEqual(self.mem.last("error")["code"], "forbidden")

    def test_a_reconnect_on_the_other_process_after_a_removal_is_refused_join(self):
        """B caches mem's user record (with the room among their rooms) from a handshake; removed on A, mem
        reconnects to B with a token issued earlier (so nothing but the handshake reads the user, from B's
        cache): join is forbidden and the room's history is not sent. This holds only because the removal's
        bus event drops B's cached copy: a stale one lists the room, and the socket would count as a member."""
        token = self.b.token("mem")  # issued before the removal: reconnecting reads no login, only the cache
        self.b.closed(self.mem)
        self.mem = self.reconnect_to_b(token)
        self.assertIn("team", fired(self.b.store.get_user(self.mem.user_id)).rooms)
        self.b.join(self.mem, "team")
        self.b.closed(self.mem)  # offline on B, so the next socket's rooms come from the (cached) user again
        fired(self.a.members.remove(self.principal, "team", "mem"))
        self.settle()
        again = self.reconnect_to_b(token)
        self.b.send(again, type="join", room="team")
        self.clock.advance(0)
        self.assertEqual(again.last("error")["code"], "forbidden")
        self.assertEqual(again.of_type("joined"), [])

    def test_rest_reads_on_the_other_process_never_use_its_stale_copy_of_the_user(self):
        """Bus down, so B keeps its cached copy of mem (which lists the room) while A removes mem: on B,
        mem's /api/sessions (and so its unread counts) and /api/rooms no longer show the private room, and
        its history is a 404: these read memberships from the store, never from a cached user."""
        token = self.b.token("mem")
        self.network.down()
        fired(self.a.members.remove(self.principal, "team", "mem"))
        self.settle()
        principal = fired(self.b.accounts.authenticate(token))
        self.assertIn("team", principal.user.rooms)  # B's copy is stale: only the bus would have dropped it
        self.assertEqual(fired(self.b.history.sessions(principal.user)), [])
        self.assertNotIn("team", [room["name"] for room in fired(self.b.catalog.listed(principal.user))])
        with self.assertRaises(Exception) as refused:
            fired(self.b.access.require(principal.user, "team", READ))
        self.assertEqual(refused.exception.status, 404)

    def test_while_the_bus_is_down_a_stale_copy_of_the_user_does_not_let_a_new_socket_join(self):
        """Bus down; B holds a copy of mem's account (from a request there) listing the room, and no socket
        of mem's on B joined it. A removes mem; mem opens a socket on B with an earlier token (so it counts
        as a member of the room in B's registry): its join is still forbidden and sends no history."""
        token = self.b.token("mem")
        self.b.closed(self.mem)
        self.network.down()
        fired(self.b.accounts.authenticate(token))  # B's copy, listing the room
        fired(self.a.members.remove(self.principal, "team", "mem"))
        self.settle()
        again = self.reconnect_to_b(token)
        self.assertTrue(self.b.registry.is_member(again.user_id, "team"))  # B's stale view
        self.b.send(again, type="join", room="team")
        self.clock.advance(0)
        self.assertEqual(again.last("error")["code"], "forbidden")
        self.assertEqual(again.of_type("joined"), [])

    def test_a_removal_made_while_the_bus_is_down_stops_the_member_on_the_other_within_a_second(self):
        """Bus down: mem removed on A. B, reading the store for A's messages about once a second, reads the
        room's members too: mem's socket on B leaves the room (removed) and never gets A's later message,
        which the witness on B does get; when the bus returns, A's kept event changes nothing more there."""
        self.b.join(self.mem, "team")
        wit = self.b.connect("wit")
        fired(self.a.members.invite(self.principal, "team", {"user": "wit"}))
        self.settle()
        self.b.join(wit, "team")
        self.network.down()
        fired(self.a.members.remove(self.principal, "team", "mem"))
        self.a.say(self.olive, "said after the removal", room="team")
        self.settle(1.5)
        self.assertEqual(self.mem.last("left"), {"type": "left", "room": "team", "reason": "removed"})
        self.assertIn("said after the removal", [frame.get("text") for frame in wit.sent])
        self.assertNotIn("said after the removal", [frame.get("text") for frame in self.mem.sent])
        self.network.back()
        self.settle()
        self.assertEqual(len(self.mem.of_type("left")), 1)
        self.b.send(self.mem, type="join", room="team")
        self.clock.advance(0)
        self.assertEqual(self.mem.last("error")["code"], "forbidden")
