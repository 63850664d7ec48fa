"""Rooms over the socket and REST: membership, presence, typing, receipts, history, recovery, sessions."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from chatd.ratelimit import Rate
from tests.harness import start_server
from tests.wsclient import connect


class RoomTests(TestCase):
    timeout = 60

    async def setUp(self):
        self.server = await start_server(self, socket_rate=Rate(1000, 1000))  # bursts of 60 frames below
        self.http = self.server.client()
        self.alice = await self.http.register("alice")
        self.bob = await self.http.register("bob")
        self.a = await self._open(self.alice)
        self.b = await self._open(self.bob)

    async def _open(self, session):
        ws = await connect(self.server.url, session["token"], test=self)
        await ws.next("hello")
        return ws

    async def _join(self, ws, room="lobby", **extra):
        ws.send({"type": "join", "room": room, **extra})
        return await ws.next("joined")

    async def _send(self, ws, text, room="lobby", client_id=None):
        frame = {"type": "message", "room": room, "text": text}
        if client_id:
            frame["client_id"] = client_id
        ws.send(frame)
        return await ws.next("ack")

    async def test_second_join_does_not_duplicate_delivery(self):
        """Joining twice on one socket answers joined again and still delivers each message once."""
        await self._join(self.a)
        await self._join(self.a)
        await self._send(self.a, "once")
        self.assertEqual((await self.a.next("message"))["text"], "once")
        await self.a.none("message")

    async def test_only_joined_sockets_receive_room_frames(self):
        """A socket of a member that did not join the room receives nothing from it."""
        await self._join(self.a)
        await self._join(self.b)
        other_bob_socket = await self._open(self.bob)
        await self._send(self.a, "for joined sockets")
        await self.b.next("message")
        await other_bob_socket.none("message")

    async def test_online_and_offline_presence(self):
        """A member's first socket sends online and their last closing sends offline to the room."""
        await self._join(self.a)
        await self._join(self.b)
        await self.a.next("presence")  # bob joined
        second = await self._open(self.bob)
        await self.a.none("presence")  # not bob's first socket
        await second.close()
        await self.a.none("presence")  # not bob's last socket
        await self.b.close()
        offline = await self.a.next("presence")
        self.assertEqual((offline["user"], offline["event"]), ("bob", "offline"))
        self.b = await self._open(self.bob)
        online = await self.a.next("presence")
        self.assertEqual((online["user"], online["event"]), ("bob", "online"))

    async def test_membership_survives_reconnect_and_members_lists_online_members(self):
        """Membership lasts across sockets; joined.members lists the members online now."""
        await self._join(self.b)
        await self.b.close()
        joined = await self._join(self.a)
        self.assertEqual(joined["members"], ["alice"])  # bob is a member but offline
        sessions = await self.http.request("GET", "/api/sessions", token=self.bob["token"])
        self.assertEqual([s["room"] for s in sessions.json()["sessions"]], ["lobby"])
        rooms = await self.http.request("GET", "/api/rooms", token=self.bob["token"])
        [lobby] = rooms.json()["rooms"]
        self.assertEqual((lobby["name"], lobby["members"], lobby["online"]), ("lobby", 2, 1))

    async def test_leave_ends_membership(self):
        """leave answers left, stops delivery, tells the others, and removes the session."""
        await self._join(self.a)
        await self._join(self.b)
        await self.a.next("presence")
        self.b.send({"type": "leave", "room": "lobby"})
        self.assertEqual(await self.b.next("left"), {"type": "left", "room": "lobby"})
        presence = await self.a.next("presence")
        self.assertEqual((presence["user"], presence["event"]), ("bob", "leave"))
        await self._send(self.a, "bob is gone")
        await self.b.none("message")
        sessions = await self.http.request("GET", "/api/sessions", token=self.bob["token"])
        self.assertEqual(sessions.json(), {"sessions": []})

    async def test_deleted_user_is_no_longer_a_member(self):
        """Deleting an account removes it from its rooms' member counts."""
        await self._join(self.a)
        await self._join(self.b)
        await self.http.request("DELETE", f"/api/users/{self.bob['user']['id']}", token=self.bob["token"])
        [lobby] = (await self.http.request("GET", "/api/rooms", token=self.alice["token"])).json()["rooms"]
        self.assertEqual(lobby["members"], 1)

    async def test_typing_goes_to_the_others_only(self):
        """typing is relayed to the other members with the username, not echoed to the sender."""
        await self._join(self.a)
        await self._join(self.b)
        self.a.send({"type": "typing", "room": "lobby", "typing": True})
        self.assertEqual(await self.b.next("typing"), {"type": "typing", "room": "lobby", "user": "alice", "typing": True})
        await self.a.none("typing")

    async def test_read_receipts_feed_unread(self):
        """Unread counts others' messages after the last read; a read receipt is relayed and persisted."""
        await self._join(self.a)
        await self._join(self.b)
        for i in range(3):
            await self._send(self.a, f"m{i}")
        await self._send(self.b, "mine")
        unread = (await self.http.request("GET", "/api/sessions", token=self.bob["token"])).json()["sessions"][0]
        self.assertEqual(unread["unread"], 3)
        self.b.send({"type": "read", "room": "lobby", "seq": 2})
        self.assertEqual(await self.a.next("read"), {"type": "read", "room": "lobby", "user": "bob", "seq": 2})
        await self.b.none("read")
        unread = (await self.http.request("GET", "/api/sessions", token=self.bob["token"])).json()["sessions"][0]
        self.assertEqual(unread["unread"], 1)
        self.assertIsNotNone(unread["last_message_at"])

    async def test_read_positions_can_be_read_back(self):
        """GET /api/rooms/{room}/reads lists how far members have read (for "seen by" after a reload), also
        right after the receipt, before it is written to the store; an unknown room has none."""
        await self._join(self.a)
        await self._join(self.b)
        for i in range(3):
            await self._send(self.a, f"m{i}")
        self.b.send({"type": "read", "room": "lobby", "seq": 2})
        await self.a.next("read")
        reads = await self.http.request("GET", "/api/rooms/lobby/reads", token=self.alice["token"])
        self.assertEqual(reads.json(), {"reads": [{"user": "bob", "user_id": self.bob["user"]["id"], "seq": 2}]})
        nothing = await self.http.request("GET", "/api/rooms/nowhere/reads", token=self.alice["token"])
        self.assertEqual((nothing.status, nothing.json()), (200, {"reads": []}))
        for bad in ("/api/rooms/%2E%2E/reads", "/api/rooms/a%20b/reads"):
            self.assertEqual((await self.http.request("GET", bad, token=self.alice["token"])).status, 404)
        self.assertEqual((await self.http.request("GET", "/api/rooms/lobby/reads")).status, 401)

    async def test_messages_before_joining_are_not_unread(self):
        """A new member's unread starts at the room's last seq when they joined."""
        await self._join(self.a)
        await self._send(self.a, "old news")
        await self._join(self.b)
        self.assertEqual((await self.http.request("GET", "/api/sessions", token=self.bob["token"])).json()["sessions"][0]["unread"], 0)
        await self._send(self.a, "new")
        self.assertEqual((await self.http.request("GET", "/api/sessions", token=self.bob["token"])).json()["sessions"][0]["unread"], 1)

    async def test_history_latest_50_and_since(self):
        """join returns the latest 50; join with since returns everything after it."""
        await self._join(self.a)
        for i in range(60):
            self.a.send({"type": "message", "room": "lobby", "text": f"m{i}", "client_id": f"c{i}"})
        for _ in range(60):
            await self.a.next("ack")
        joined = await self._join(self.b)
        self.assertEqual([m["seq"] for m in joined["history"]], list(range(11, 61)))
        self.assertEqual(joined["history"][-1]["text"], "m59")
        self.assertNotIn("truncated", joined)
        since = await self._join(self.b, since=55)
        self.assertEqual([m["seq"] for m in since["history"]], [56, 57, 58, 59, 60])
        everything = await self._join(self.b, since=0)
        self.assertEqual(len(everything["history"]), 60)

    async def test_rest_history_pages_back_to_the_start(self):
        """GET /api/rooms/{room}/messages pages oldest-first with next_before until null."""
        await self._join(self.a)
        for i in range(7):
            await self._send(self.a, f"m{i}")
        seen, before = [], None
        while True:
            query = "?limit=3" + (f"&before={before}" if before else "")
            page = (await self.http.request("GET", f"/api/rooms/lobby/messages{query}", token=self.bob["token"])).json()
            seen = [m["seq"] for m in page["messages"]] + seen
            before = page["next_before"]
            if before is None:
                break
        self.assertEqual(seen, list(range(1, 8)))
        unknown = await self.http.request("GET", "/api/rooms/nowhere/messages", token=self.bob["token"])
        self.assertEqual(unknown.json(), {"messages": [], "next_before": None})
        bad = await self.http.request("GET", "/api/rooms/lobby/messages?limit=500", token=self.bob["token"])
        self.assertEqual(bad.status, 400)

    async def test_session_history_is_for_members_only(self):
        """/api/sessions/{room}/messages is 404 for a room the user is not a member of."""
        await self._join(self.a)
        await self._send(self.a, "members only view")
        mine = await self.http.request("GET", "/api/sessions/lobby/messages", token=self.alice["token"])
        self.assertEqual([m["text"] for m in mine.json()["messages"]], ["members only view"])
        theirs = await self.http.request("GET", "/api/sessions/lobby/messages", token=self.bob["token"])
        self.assertEqual((theirs.status, theirs.code), (404, "not_found"))

    async def test_reconnect_with_since_recovers_missed_messages(self):
        """A client that was away rejoins with since and gets exactly the messages it missed."""
        await self._join(self.a)
        await self._join(self.b)
        await self._send(self.a, "before")
        last_seen = (await self.b.next("message"))["seq"]
        await self.b.close()
        for i in range(5):
            await self._send(self.a, f"missed {i}")
        self.b = await self._open(self.bob)
        joined = await self._join(self.b, since=last_seen)
        self.assertEqual([m["text"] for m in joined["history"]], [f"missed {i}" for i in range(5)])
