"""A room over real sockets, REST and the real store: one happy path through membership, presence, typing,
messages, receipts, unread and leave.

The rules themselves (who gets which frame, history, unread, leave on every socket, refusals) are unit
tests on the chat harness: tests/test_chat_membership.py, test_chat_messages.py, test_chat_signals.py,
test_chat_presence.py, test_chat_rest.py. This checks that they hold together on the wire.
"""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from tests.harness import start_server
from tests.wsclient import connect


class RoomTests(TestCase):
    timeout = 60

    async def setUp(self):
        self.server = await start_server(self)
        self.http = self.server.client()
        self.alice = await self.http.register("alice")
        self.bob = await self.http.register("bob")

    async def _open(self, session):
        ws = await connect(self.server.url, session["token"], test=self)
        await ws.next("hello")
        return ws

    async def _get(self, path: str, session) -> dict:
        response = await self.http.request("GET", path, token=session["token"])
        self.assertEqual(response.status, 200, response)
        return response.json()

    async def test_a_room_over_sockets_rest_and_the_store(self):
        """Bob's join tells Alice; his typing and read receipt reach her; her messages reach him; REST
        (sessions with unread, read positions, history, rooms) reads it all back from the store; his leave
        answers ``left``, tells her, and ends his session."""
        a, b = await self._open(self.alice), await self._open(self.bob)
        a.send({"type": "join", "room": "lobby"})
        self.assertEqual((await a.next("joined"))["members"], ["alice"])
        b.send({"type": "join", "room": "lobby"})
        self.assertEqual((await b.next("joined"))["members"], ["alice", "bob"])
        self.assertEqual(await a.next("presence"), {"type": "presence", "room": "lobby", "user": "bob", "event": "join"})

        b.send({"type": "typing", "room": "lobby", "typing": True})
        self.assertEqual(await a.next("typing"), {"type": "typing", "room": "lobby", "user": "bob", "typing": True})
        for n in (1, 2):
            a.send({"type": "message", "room": "lobby", "text": f"m{n}", "client_id": f"c{n}"})
            self.assertEqual((await a.next("ack"))["seq"], n)
            self.assertEqual((await b.next("message"))["text"], f"m{n}")
        [session] = (await self._get("/api/sessions", self.bob))["sessions"]
        self.assertEqual((session["room"], session["unread"]), ("lobby", 2))

        b.send({"type": "read", "room": "lobby", "seq": 1})
        self.assertEqual(await a.next("read"), {"type": "read", "room": "lobby", "user": "bob", "seq": 1})
        self.assertEqual((await self._get("/api/sessions", self.bob))["sessions"][0]["unread"], 1)
        reads = await self._get("/api/rooms/lobby/reads", self.alice)
        self.assertEqual(reads, {"reads": [{"user": "bob", "user_id": self.bob["user"]["id"], "seq": 1}]})
        page = await self._get("/api/rooms/lobby/messages", self.bob)
        self.assertEqual(([m["text"] for m in page["messages"]], page["next_before"]), (["m1", "m2"], None))

        b.send({"type": "leave", "room": "lobby"})
        self.assertEqual(await b.next("left"), {"type": "left", "room": "lobby"})
        self.assertEqual(await a.next("presence"), {"type": "presence", "room": "lobby", "user": "bob", "event": "leave"})
        self.assertEqual(await self._get("/api/sessions", self.bob), {"sessions": []})
        [lobby] = (await self._get("/api/rooms", self.alice))["rooms"]
        self.assertEqual((lobby["name"], lobby["members"], lobby["online"]), ("lobby", 1, 1))
