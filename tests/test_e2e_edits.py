"""Editing and deleting messages over REST, with the room told and history kept gap-free (real sockets, real store)."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from tests.harness import start_server
from tests.wsclient import joined


class EditTests(TestCase):
    timeout = 60

    async def setUp(self):
        self.server = await start_server(self)
        self.http = self.server.client()
        self.root = await self.http.register("root")  # the first user: admin
        self.alice = await self.http.register("alice")
        self.bob = await self.http.register("bob")
        self.a = await joined(self.server.url, self.alice["token"], test=self)
        self.b = await joined(self.server.url, self.bob["token"], test=self)
        self.seqs = [await self._say(text) for text in ("one", "two", "three")]

    async def _say(self, text: str) -> int:
        self.a.send({"type": "message", "room": "lobby", "text": text})
        return (await self.a.next("ack"))["seq"]

    def _path(self, seq) -> str:
        return f"/api/rooms/lobby/messages/{seq}"

    async def _history(self, server=None) -> list[dict]:
        page = await (server or self.server).client().request("GET", "/api/rooms/lobby/messages", token=self.bob["token"])
        return page.json()["messages"]

    async def test_author_edits_and_the_room_is_told(self):
        """PATCH by the author: 200 with edited_at, an edited event to the room, the new text in history."""
        response = await self.http.request("PATCH", self._path(self.seqs[1]), {"text": "deux"}, token=self.alice["token"])
        self.assertEqual(response.status, 200)
        message = response.json()
        self.assertEqual((message["seq"], message["text"], message["user"]), (self.seqs[1], "deux", "alice"))
        event = await self.b.next("edited")
        self.assertEqual(event, {"type": "edited", "room": "lobby", "seq": self.seqs[1], "text": "deux",
                                 "edited_at": message["edited_at"]})
        history = await self._history()
        self.assertEqual([m["text"] for m in history], ["one", "deux", "three"])
        self.assertNotIn("edited_at", history[0])
        self.assertEqual(history[1]["edited_at"], message["edited_at"])
        # Read from the store by a fresh chatd (nothing cached): the edit was stored.
        other = await start_server(self, mongo=self.server.config.mongo)
        self.assertEqual([m["text"] for m in await self._history(other)], ["one", "deux", "three"])

    async def test_only_the_author_edits(self):
        """Another user, and even an admin, get 403; nothing changes."""
        for who in (self.bob, self.root):
            response = await self.http.request("PATCH", self._path(self.seqs[0]), {"text": "hacked"}, token=who["token"])
            self.assertEqual((response.status, response.code), (403, "forbidden"))
        self.assertEqual((await self._history())[0]["text"], "one")

    async def test_delete_leaves_a_tombstone(self):
        """The author deletes: 204, a deleted event, and history keeps the seq as a tombstone without text."""
        response = await self.http.request("DELETE", self._path(self.seqs[1]), token=self.alice["token"])
        self.assertEqual(response.status, 204)
        self.assertEqual(await self.b.next("deleted"), {"type": "deleted", "room": "lobby", "seq": self.seqs[1]})
        history = await self._history()
        self.assertEqual([m["seq"] for m in history], self.seqs)  # still gap-free
        tombstone = history[1]
        self.assertEqual(set(tombstone), {"room", "seq", "id", "user", "user_id", "ts", "deleted"})
        self.assertEqual(tombstone["user_id"], self.alice["user"]["id"])
        self.assertTrue(tombstone["deleted"])
        # Joining again shows the tombstone too.
        self.b.send({"type": "join", "room": "lobby"})
        joined = await self.b.next("joined")
        self.assertEqual([m.get("deleted", False) for m in joined["history"]], [False, True, False])
        # Gone is gone: neither edited nor deleted again.
        again = await self.http.request("DELETE", self._path(self.seqs[1]), token=self.alice["token"])
        edit = await self.http.request("PATCH", self._path(self.seqs[1]), {"text": "back"}, token=self.alice["token"])
        self.assertEqual((again.status, edit.status), (404, 404))

    async def test_admin_deletes_anyone_others_do_not(self):
        """Another user may not delete someone's message (403); an admin may (204), leaving a tombstone."""
        forbidden = await self.http.request("DELETE", self._path(self.seqs[0]), token=self.bob["token"])
        self.assertEqual(forbidden.status, 403)
        by_admin = await self.http.request("DELETE", self._path(self.seqs[0]), token=self.root["token"])
        self.assertEqual(by_admin.status, 204)
        self.assertTrue((await self._history())[0]["deleted"])

    async def test_bad_requests(self):
        """Unknown or malformed addresses are 404; bad text is 400 naming the field; no token is 401."""
        cases = [
            ("PATCH", "/api/rooms/lobby/messages/999", {"text": "x"}, self.alice, 404),
            ("PATCH", "/api/rooms/lobby/messages/abc", {"text": "x"}, self.alice, 404),
            ("PATCH", "/api/rooms/lobby/messages/0", {"text": "x"}, self.alice, 404),
            ("DELETE", "/api/rooms/elsewhere/messages/1", None, self.alice, 404),
            ("PATCH", self._path(self.seqs[0]), {"text": ""}, self.alice, 400),
            ("PATCH", self._path(self.seqs[0]), {"text": {"$set": "x"}}, self.alice, 400),
            ("PATCH", self._path(self.seqs[0]), {"text": "x" * 4001}, self.alice, 400),
            ("PATCH", self._path(self.seqs[0]), {"text": "x", "user": "bob"}, self.alice, 400),
            ("PATCH", self._path(self.seqs[0]), {"text": "x"}, None, 401),
        ]
        for method, path, body, who, status in cases:
            with self.subTest(method=method, path=path, body=str(body)[:30]):
                response = await self.http.request(method, path, body, token=who and who["token"])
                self.assertEqual(response.status, status, response.body[:200])
        self.assertEqual((await self._history())[0]["text"], "one")
