"""Threads and reactions end to end: real twistd, real store, real sockets (SPEC.md, Details: Threads, Reactions).

Every frame (``reply_to``, ``thread``, ``react``, ``reaction``), route (the thread page, PUT/DELETE of a
reaction), limit and refusal, and both across two processes on one store and a real Redis bus.
"""

from __future__ import annotations

from urllib.parse import quote

from twisted.trial.unittest import TestCase

from tests.harness import start_server
from tests.test_e2e_cluster import ClusterCase, sleep
from tests.wsclient import joined

THUMBS = "👍"


class ThreadsEndToEnd(TestCase):
    timeout = 90

    async def setUp(self):
        self.server = await start_server(self)
        self.http = self.server.client()
        self.root_user = await self.http.register("root")
        self.alice = await self.http.register("alice")
        self.bob = await self.http.register("bob")
        self.a = await joined(self.server.url, self.alice["token"], test=self)
        self.b = await joined(self.server.url, self.bob["token"], test=self)
        self.root = await self._say(self.a, "root")

    async def _say(self, ws, text, **extra) -> int:
        ws.send({"type": "message", "room": "lobby", "text": text, **extra})
        return (await ws.next("ack", "error"))["seq"]

    async def _get(self, path, who=None):
        return await self.http.request("GET", path, token=(who or self.bob)["token"])

    def _reaction(self, seq, emoji=THUMBS):
        return f"/api/rooms/lobby/messages/{seq}/reactions/{quote(emoji, safe='')}"

    async def test_replies_thread_frames_history_and_the_thread_route(self):
        """Replies take the next seqs with reply_to (a reply to a reply: the root); each is followed by a
        thread frame; history carries the root's summary; the thread route pages replies oldest first."""
        first = await self._say(self.b, "one", reply_to=self.root, client_id="r1")
        self.assertEqual(first, self.root + 1)
        message = await self.a.next("message")
        while message["text"] != "one":
            message = await self.a.next("message")
        self.assertEqual(message["reply_to"], self.root)
        thread = await self.a.next("thread")
        self.assertEqual(thread, {"type": "thread", "room": "lobby", "root": self.root, "replies": 1,
                                  "last_reply_at": message["ts"], "last_reply_seq": first})
        second = await self._say(self.a, "two", reply_to=first)  # a reply to a reply
        self.assertEqual((await self.b.next("thread"))["replies"], 1)
        thread = await self.b.next("thread")
        self.assertEqual((thread["replies"], thread["last_reply_seq"]), (2, second))
        await self._say(self.a, "three", reply_to=self.root)
        history = (await self._get("/api/rooms/lobby/messages")).json()["messages"]
        self.assertEqual(history[0]["thread"]["replies"], 3)
        self.assertEqual([m.get("reply_to") for m in history], [None, self.root, self.root, self.root])
        page = (await self._get(f"/api/rooms/lobby/messages/{self.root}/thread?limit=2")).json()
        self.assertEqual(page["root"]["seq"], self.root)
        self.assertEqual([m["text"] for m in page["messages"]], ["two", "three"])
        older = (await self._get(f"/api/rooms/lobby/messages/{self.root}/thread?limit=2&before={page['next_before']}")).json()
        self.assertEqual(([m["text"] for m in older["messages"]], older["next_before"]), (["one"], None))
        # A fresh chatd on the same store (nothing cached) reads the same from the store.
        other = await start_server(self, mongo=self.server.config.mongo)
        fresh = await other.client().request("GET", "/api/rooms/lobby/messages", token=self.bob["token"])
        self.assertEqual(fresh.json()["messages"][0]["thread"]["replies"], 3)

    async def test_deleting_a_root_keeps_its_thread_and_refuses_new_replies(self):
        """DELETE of a root: its tombstone keeps ``thread``, the thread route still answers, a new reply to it
        is not_found."""
        reply = await self._say(self.b, "re", reply_to=self.root)
        await self.a.next("thread")
        deleted = await self.http.request("DELETE", f"/api/rooms/lobby/messages/{self.root}", token=self.alice["token"])
        self.assertEqual(deleted.status, 204)
        tomb = (await self._get("/api/rooms/lobby/messages")).json()["messages"][0]
        self.assertEqual((tomb["deleted"], tomb["thread"]["replies"]), (True, 1))
        page = (await self._get(f"/api/rooms/lobby/messages/{self.root}/thread")).json()
        self.assertEqual([m["seq"] for m in page["messages"]], [reply])
        self.b.send({"type": "message", "room": "lobby", "text": "late", "reply_to": self.root})
        self.assertEqual((await self.b.next("error"))["code"], "not_found")

    async def test_reply_refusals(self):
        """reply_to naming no message is not_found (ref: client_id); a bad reply_to is invalid_frame."""
        self.b.send({"type": "message", "room": "lobby", "text": "x", "reply_to": 999, "client_id": "c"})
        error = await self.b.next("error")
        self.assertEqual((error["code"], error["ref"]), ("not_found", "c"))
        self.b.send({"type": "message", "room": "lobby", "text": "x", "reply_to": "1"})
        self.assertEqual((await self.b.next("error"))["code"], "invalid_frame")

    async def test_thread_route_refusals(self):
        """The thread route: 404 for no such message, 400 for a bad limit or before."""
        self.assertEqual((await self._get("/api/rooms/lobby/messages/999/thread")).status, 404)
        self.assertEqual((await self._get(f"/api/rooms/lobby/messages/{self.root}/thread?limit=0")).status, 400)
        self.assertEqual((await self._get(f"/api/rooms/lobby/messages/{self.root}/thread?before=x")).status, 400)
        page = (await self._get(f"/api/rooms/lobby/messages/{self.root}/thread")).json()
        self.assertEqual((page["messages"], page["next_before"]), ([], None))

    async def test_react_frame_and_routes(self):
        """react and PUT add, each change a reaction frame to everyone; repeats change nothing and send
        nothing; DELETE removes; history shows {emoji: [users in order]}."""
        self.b.send({"type": "react", "room": "lobby", "seq": self.root, "emoji": THUMBS, "on": True})
        frame = await self.a.next("reaction")
        self.assertEqual(frame, {"type": "reaction", "room": "lobby", "seq": self.root, "emoji": THUMBS,
                                 "user": "bob", "on": True})
        self.assertEqual((await self.b.next("reaction"))["user"], "bob")
        put = await self.http.request("PUT", self._reaction(self.root), token=self.alice["token"])
        self.assertEqual(put.status, 204)
        self.assertEqual((await self.b.next("reaction"))["user"], "alice")
        self.assertEqual((await self.a.next("reaction"))["user"], "alice")
        again = await self.http.request("PUT", self._reaction(self.root), token=self.alice["token"])
        self.assertEqual(again.status, 204)
        self.b.send({"type": "react", "room": "lobby", "seq": self.root, "emoji": THUMBS, "on": True})
        await self.a.none("reaction", wait=0.5)
        history = (await self._get("/api/rooms/lobby/messages")).json()["messages"]
        self.assertEqual(history[0]["reactions"], {THUMBS: ["bob", "alice"]})
        gone = await self.http.request("DELETE", self._reaction(self.root), token=self.bob["token"])
        self.assertEqual(gone.status, 204)
        self.assertEqual((await self.a.next("reaction"))["on"], False)
        history = (await self._get("/api/rooms/lobby/messages")).json()["messages"]
        self.assertEqual(history[0]["reactions"], {THUMBS: ["alice"]})

    async def test_reactions_follow_a_rename(self):
        """Bob reacts, then renames himself: history (cached, and read fresh from the store) shows the new name."""
        put = await self.http.request("PUT", self._reaction(self.root), token=self.bob["token"])
        self.assertEqual(put.status, 204)
        renamed = await self.http.request("PATCH", f"/api/users/{self.bob['user']['id']}", {"username": "robert"},
                                          token=self.bob["token"])
        self.assertEqual(renamed.status, 200)
        history = (await self._get("/api/rooms/lobby/messages", self.alice)).json()["messages"]
        self.assertEqual(history[0]["reactions"], {THUMBS: ["robert"]})
        other = await start_server(self, mongo=self.server.config.mongo)
        fresh = await other.client().request("GET", "/api/rooms/lobby/messages", token=self.alice["token"])
        self.assertEqual(fresh.json()["messages"][0]["reactions"], {THUMBS: ["robert"]})

    async def test_reaction_refusals_and_limits(self):
        """Bad emoji: invalid_frame / 400; non-member: forbidden / 403; no or deleted message: not_found /
        404; a 21st distinct emoji: too_large / 413; a tombstone shows no reactions."""
        for emoji in ("", "a b", "x" * 33):
            self.b.send({"type": "react", "room": "lobby", "seq": self.root, "emoji": emoji, "on": True})
            self.assertEqual((await self.b.next("error"))["code"], "invalid_frame")
        for emoji in ("a b", "x" * 33):
            response = await self.http.request("PUT", self._reaction(self.root, emoji), token=self.bob["token"])
            self.assertEqual((response.status, response.code), (400, "invalid_request"))
        carol = await self.http.register("carol")
        outsider = await self.http.request("PUT", self._reaction(self.root), token=carol["token"])
        self.assertEqual((outsider.status, outsider.code), (403, "forbidden"))
        missing = await self.http.request("PUT", self._reaction(999), token=self.bob["token"])
        self.assertEqual((missing.status, missing.code), (404, "not_found"))
        self.b.send({"type": "react", "room": "lobby", "seq": 999, "emoji": "x", "on": True})
        self.assertEqual((await self.b.next("error"))["code"], "not_found")
        for n in range(20):
            response = await self.http.request("PUT", self._reaction(self.root, f"e{n}"), token=self.bob["token"])
            self.assertEqual(response.status, 204)
        over = await self.http.request("PUT", self._reaction(self.root, "e20"), token=self.bob["token"])
        self.assertEqual((over.status, over.code), (413, "too_large"))
        self.b.send({"type": "react", "room": "lobby", "seq": self.root, "emoji": "e21", "on": True})
        self.assertEqual((await self.b.next("error"))["code"], "too_large")
        deleted = await self.http.request("DELETE", f"/api/rooms/lobby/messages/{self.root}", token=self.alice["token"])
        self.assertEqual(deleted.status, 204)
        after = await self.http.request("PUT", self._reaction(self.root), token=self.bob["token"])
        self.assertEqual(after.status, 404)
        tomb = (await self._get("/api/rooms/lobby/messages")).json()["messages"][0]
        self.assertEqual((tomb["deleted"], "reactions" in tomb), (True, False))

    async def test_private_room_outsider_gets_not_found(self):
        """In a private room an outsider's thread read and reaction are 404, as if it did not exist."""
        made = await self.http.request("POST", "/api/rooms", {"name": "secret", "visibility": "private"},
                                       token=self.alice["token"])
        self.assertEqual(made.status, 201)
        self.a.send({"type": "join", "room": "secret"})
        await self.a.next("joined")
        self.a.send({"type": "message", "room": "secret", "text": "hush"})
        seq = (await self.a.next("ack"))["seq"]
        read = await self.http.request("GET", f"/api/rooms/secret/messages/{seq}/thread", token=self.bob["token"])
        react = await self.http.request("PUT", f"/api/rooms/secret/messages/{seq}/reactions/x", token=self.bob["token"])
        self.assertEqual((read.status, react.status), (404, 404))
        self.b.send({"type": "react", "room": "secret", "seq": seq, "emoji": "x", "on": True})
        self.assertEqual((await self.b.next("error"))["code"], "not_found")


class ThreadsAcrossProcesses(ClusterCase):
    async def test_threads_and_reactions_across_processes_and_concurrent_same_reaction(self):
        """On two chatd processes and one bus: a reply and a reaction made on A reach B's sockets as thread
        and reaction frames; the same user adding the same emoji through A and B at once stores one reaction."""
        a, b = await self.cluster(2)
        await self.user(a, "root")
        alice = await self.user(a, "alice")
        bob = await self.user(a, "bob")
        wa = await joined(a.url, alice["token"], test=self)
        wb = await joined(b.url, bob["token"], test=self)
        wa.send({"type": "message", "room": "lobby", "text": "root"})
        root = (await wa.next("ack"))["seq"]
        wa.send({"type": "message", "room": "lobby", "text": "re", "reply_to": root})
        thread = await wb.next("thread")
        self.assertEqual((thread["root"], thread["replies"]), (root, 1))
        path = f"/api/rooms/lobby/messages/{root}/reactions/{quote(THUMBS)}"
        results = [a.client().request("PUT", path, token=alice["token"]) for _ in range(3)] + \
                  [b.client().request("PUT", path, token=alice["token"]) for _ in range(3)]
        for response in results:
            self.assertEqual((await response).status, 204)
        frame = await wb.next("reaction")
        self.assertEqual((frame["user"], frame["emoji"], frame["on"]), ("alice", THUMBS, True))
        await wb.none("reaction", wait=1.0)
        await sleep(0.3)
        for node in (a, b):
            page = await node.client().request("GET", "/api/rooms/lobby/messages", token=bob["token"])
            first = page.json()["messages"][0]
            self.assertEqual((first["reactions"], first["thread"]["replies"]), ({THUMBS: ["alice"]}, 1))
