"""Rooms and roles across two chatd processes on one store and the fake bus (tests.fakebus): invitations,
member and room changes reach the other process's sockets, and a removal there stops the member's live
frames at once, also after a bus outage (SPEC.md: Rooms and roles; Several processes and machines)."""

from __future__ import annotations

from chatd.storage.cached import CachedStore
from tests.chatharness import ChatHarness, fired
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
        """Removed on A, mem's socket on B is told left (removed) and gets no more of the room; a new socket
        of mem on B cannot join it (the cached user, which listed the room, was dropped)."""
        self.b.closed(self.mem)
        self.mem = self.b.connect("mem")  # B now caches mem with the room among theirs
        self.assertIn("team", fired(self.b.store.get_user(self.mem.user_id)).rooms)
        self.b.join(self.mem, "team")
        fired(self.a.members.remove(self.principal, "team", "mem"))
        self.settle()
        self.assertEqual(self.mem.last("left"), {"type": "left", "room": "team", "reason": "removed"})
        self.a.say(self.olive, "after", room="team")
        self.settle()
        self.assertNotIn("after", [frame.get("text") for frame in self.mem.sent])
        self.b.closed(self.mem)  # offline on B, so the next socket's rooms come from the (cached) user again
        again = self.b.connect("mem")
        self.b.send(again, type="join", room="team")
        self.assertEqual(again.last("error")["code"], "forbidden")

    def test_a_removal_made_while_the_bus_is_down_goes_out_when_it_returns(self):
        """Bus down: mem removed on A; when the bus returns, B's socket leaves the room (kept, not dropped)."""
        self.b.join(self.mem, "team")
        self.network.down()
        fired(self.a.members.remove(self.principal, "team", "mem"))
        self.settle(2)
        self.assertEqual(self.mem.of_type("left"), [])
        self.network.back()
        self.settle()
        self.assertEqual(self.mem.last("left")["reason"], "removed")

