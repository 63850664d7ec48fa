"""Mentions and search end to end (real twistd-built server, real sockets, the nx-27017 store): the
``mention`` frame to a socket that joined nothing, ``mentions`` on messages and in /api/sessions, and
``GET /api/search`` with its paging, narrowing and refusals, never showing a private room to others."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from tests.harness import start_server
from tests.test_e2e_cluster import ClusterCase
from tests.wsclient import connect, joined


class MentionSearchTests(TestCase):
    timeout = 90

    async def setUp(self):
        self.server = await start_server(self)
        self.http = self.server.client()
        self.ann = await self.http.register("ann")
        self.ben = await self.http.register("Ben")
        self.cat = await self.http.register("cat")
        self.a = await joined(self.server.url, self.ann["token"], test=self)

    async def call(self, method, path, who, body=None):
        return await self.http.request(method, path, body, token=who["token"])

    async def say(self, text: str, room: str = "lobby") -> dict:
        self.a.send({"type": "message", "room": room, "text": text, "client_id": text[:20]})
        return await self.a.next("ack")

    async def test_mention_frame_and_sessions_count(self):
        """ben's socket, joined to nothing, gets ``mention`` for ``@ben`` (any case); the message carries
        ``mentions: ["Ben"]``; once ben is a member, /api/sessions counts the unread mention, and reading
        past it clears the count."""
        b = await connect(self.server.url, self.ben["token"], test=self)
        await b.next("hello")
        ack = await self.say("hi @BEN, see this")
        mention = await b.next("mention")
        self.assertEqual(mention, {"type": "mention", "room": "lobby", "seq": ack["seq"], "user": "ann",
                                   "text": "hi @BEN, see this"})
        self.assertEqual((await self.a.next("message"))["mentions"], ["Ben"])
        b.send({"type": "join", "room": "lobby"})
        await b.next("joined")
        await self.say("again @ben")
        await b.next("message")
        [session] = (await self.call("GET", "/api/sessions", self.ben)).json()["sessions"]
        self.assertEqual((session["unread"], session["mentions"]), (1, 1))
        last = (await self.say("no mention"))["seq"]
        b.send({"type": "read", "room": "lobby", "seq": last})
        await b.next("message")
        for _ in range(50):
            [session] = (await self.call("GET", "/api/sessions", self.ben)).json()["sessions"]
            if session["mentions"] == 0:
                break
        self.assertEqual(session["mentions"], 0)

    async def test_private_room_is_never_mentioned_to_or_searched_by_outsiders(self):
        """In ann's private room ``team``, ``@cat`` mentions nobody (cat is no member): cat's socket gets no
        ``mention`` and her searches, all rooms or ``room=team``, show nothing of it (404 for the room)."""
        c = await connect(self.server.url, self.cat["token"], test=self)
        await c.next("hello")
        created = await self.call("POST", "/api/rooms", self.ann, {"name": "team", "visibility": "private"})
        self.assertEqual(created.status, 201)
        self.a.send({"type": "join", "room": "team"})
        await self.a.next("joined")
        await self.say("@cat zebrafish secret", room="team")
        self.assertNotIn("mentions", await self.a.next("message"))
        await c.none("mention")
        found = await self.call("GET", "/api/search?q=zebra", self.cat)
        self.assertEqual(found.json(), {"results": [], "next": None})
        narrowed = await self.call("GET", "/api/search?q=zebra&room=team", self.cat)
        self.assertEqual((narrowed.status, narrowed.code), (404, "not_found"))
        mine = (await self.call("GET", "/api/search?q=ZEBRA%20sec", self.ann)).json()["results"]
        self.assertEqual([(r["room"], r["text"]) for r in mine], [("team", "@cat zebrafish secret")])

    async def test_search_pages_newest_first_with_edits_and_deletions(self):
        """Four matches (six sent, one edited away, one deleted) paged two at a time come newest first over
        two pages, the cursor opaque; an
        edited message is found by its new text only, a deleted one never; ``from`` narrows by author."""
        seqs = [(await self.say(f"walrus number {i}"))["seq"] for i in range(6)]
        edit = await self.call("PATCH", f"/api/rooms/lobby/messages/{seqs[0]}", self.ann, {"text": "narwhal"})
        self.assertEqual(edit.status, 200)
        self.assertEqual((await self.call("DELETE", f"/api/rooms/lobby/messages/{seqs[1]}", self.ann)).status, 204)
        got, before, pages = [], "", 0
        while True:
            page = (await self.call("GET", f"/api/search?q=walr&limit=2{before}", self.ben)).json()
            pages += 1
            got += [r["seq"] for r in page["results"]]
            if page["next"] is None:
                break
            before = f"&before={page['next']}"
        self.assertEqual((got, pages), (seqs[2:][::-1], 2))
        narwhal = (await self.call("GET", "/api/search?q=narwhal", self.ben)).json()["results"]
        self.assertEqual([r["seq"] for r in narwhal], [seqs[0]])
        self.assertEqual((await self.call("GET", "/api/search?q=walrus&from=cat", self.ben)).json()["results"], [])
        self.assertEqual(len((await self.call("GET", "/api/search?q=walrus&from=ANN", self.ben)).json()["results"]), 4)

    async def test_refusals(self):
        """No token: 401. A missing, empty, wordless or too long q, a limit outside 1–50, a forged cursor or a
        malformed room: 400 invalid_request."""
        self.assertEqual((await self.http.request("GET", "/api/search?q=x")).status, 401)
        for query in ("", "?q=", "?q=%21%21", "?q=" + "a" * 201, "?q=a&limit=0", "?q=a&limit=51",
                      "?q=a&before=zzz", "?q=a&room=bad%20name"):
            answer = await self.call("GET", "/api/search" + query, self.ben)
            self.assertEqual((answer.status, answer.code), (400, "invalid_request"), query)


class MentionAcrossNodesTests(ClusterCase):
    """Two real chatd processes on one store and a real Redis bus."""

    async def test_a_mention_on_one_node_reaches_the_user_on_the_other(self):
        """ann writes ``@ben`` on node a; ben's socket on node b, joined to nothing, gets the ``mention``
        frame; a search on b finds the message at once (the store is the index)."""
        a, b = await self.cluster(2)
        ann, ben = await self.user(a, "ann"), await self.user(b, "ben")
        sock_b = await connect(b.url, ben["token"], test=self)
        await sock_b.next("hello")
        sock_a = await joined(a.url, ann["token"], test=self)
        sock_a.send({"type": "message", "room": "lobby", "text": "@ben pelican", "client_id": "m1"})
        ack = await sock_a.next("ack")
        mention = await sock_b.next("mention", timeout=5)
        self.assertEqual(mention, {"type": "mention", "room": "lobby", "seq": ack["seq"], "user": "ann",
                                   "text": "@ben pelican"})
        found = await b.client().request("GET", "/api/search?q=pel", token=ben["token"])
        self.assertEqual([r["seq"] for r in found.json()["results"]], [ack["seq"]])
