"""Private rooms, roles and direct rooms through real twistd chatd processes on the real nx-27017 store:
the privacy guarantee attacked from every path, the member routes' permission matrix on the wire, direct
rooms asked for by two members at once, and the schema migration run twice and by two processes at once.

The rules in full (every route, role and refusal) are unit tests: tests/test_rooms_rest.py,
tests/test_rooms_access.py, tests/test_bus_rooms.py, tests/test_store_rooms.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from chatd.storage.mongo import MongoStore
from chatd.storage.schema import META_ID, SCHEMA_VERSION
from tests.cluster import ChatdNode
from tests.harness import shared_store_uri, wait_until
from tests.test_e2e_files import upload_body
from tests.test_multipart import CTYPE
from tests.wsclient import connect


class RoomsTestCase(TestCase):
    """One chatd process (twistd) on a fresh database; root (admin), olive, mo, mem and out registered."""

    timeout = 120

    async def setUp(self):
        self.node = await ChatdNode(self, "rooms", shared_store_uri(), None).start().ready()
        self.http = self.node.client()
        for name in ("root", "olive", "moe", "mem", "out"):
            setattr(self, name, await self.http.register(name))

    async def call(self, method, path, session, body=None):
        return await self.http.request(method, path, body, token=session["token"])

    async def socket(self, session):
        ws = await connect(self.node.url, session["token"], test=self)
        await ws.next("hello")
        return ws

    async def team(self):
        """olive's private room ``team`` with moe (moderator) and mem (member)."""
        created = await self.call("POST", "/api/rooms", self.olive, {"name": "team", "visibility": "private"})
        self.assertEqual(created.status, 201, created)
        self.assertEqual((await self.call("POST", "/api/rooms/team/members", self.olive,
                                          {"user": "moe", "role": "moderator"})).status, 201)
        self.assertEqual((await self.call("POST", "/api/rooms/team/members", self.olive, {"user": "mem"})).status, 201)


class PrivacyTests(RoomsTestCase):

    async def test_an_outsider_reads_nothing_by_any_path(self):
        """With a message and a file in the private room, the outsider gets 404 on the room, both history
        routes, read positions, members, the file (download and upload), finds it in neither the room list
        nor sessions, and is refused join with and without since; the admin, not a member, reads no message."""
        await self.team()
        olive = await self.socket(self.olive)
        olive.send({"type": "join", "room": "team"})
        await olive.next("joined")
        olive.send({"type": "message", "room": "team", "text": "the secret plan", "client_id": "c1"})
        await olive.next("ack")
        up = await self.http.request("POST", "/api/rooms/team/files", raw=upload_body("plan.txt", b"top secret"),
                                     token=self.olive["token"], content_type=CTYPE)
        self.assertEqual(up.status, 201, up)
        url = up.json()["file"]["url"]
        for path in ("/api/rooms/team", "/api/rooms/team/messages", "/api/sessions/team/messages",
                     "/api/rooms/team/reads", "/api/rooms/team/members", url):
            response = await self.call("GET", path, self.out)
            self.assertEqual((response.status, response.code), (404, "not_found"), path)
            self.assertNotIn(b"secret", response.body)
        for path in ("/api/rooms/team/messages", url):
            self.assertEqual((await self.call("GET", path, self.root)).status, 404, path)
        refused = await self.http.request("POST", "/api/rooms/team/files", raw=upload_body("x.txt", b"x"),
                                          token=self.out["token"], content_type=CTYPE)
        self.assertEqual(refused.status, 404)
        self.assertNotIn("team", [r["name"] for r in (await self.call("GET", "/api/rooms", self.out)).json()["rooms"]])
        self.assertEqual((await self.call("GET", "/api/sessions", self.out)).json(), {"sessions": []})
        out = await self.socket(self.out)
        for frame in ({"type": "join", "room": "team"}, {"type": "join", "room": "team", "since": 0}):
            out.send(frame)
            self.assertEqual((await out.next("error", "joined"))["code"], "forbidden")
        member = (await self.call("GET", "/api/rooms/team/messages", self.mem)).json()
        self.assertEqual([m.get("text") for m in member["messages"]], ["the secret plan", ""])
        [session] = (await self.call("GET", "/api/sessions", self.mem)).json()["sessions"]
        self.assertEqual((session["room"], session["unread"]), ("team", 2))

    async def test_a_removed_member_loses_everything_at_once(self):
        """moe removes mem: mem's two sockets get left (removed) and no further message; since-recovery by
        join, history, sessions, unread and the room list are closed to them from that moment."""
        await self.team()
        olive, mem1, mem2 = await self.socket(self.olive), await self.socket(self.mem), await self.socket(self.mem)
        for ws in (olive, mem1, mem2):
            ws.send({"type": "join", "room": "team"})
            await ws.next("joined")
        self.assertEqual((await self.call("DELETE", "/api/rooms/team/members/mem", self.moe)).status, 204)
        for ws in (mem1, mem2):
            self.assertEqual(await ws.next("left"), {"type": "left", "room": "team", "reason": "removed"})
        self.assertEqual((await olive.next("member"))["event"], "removed")
        olive.send({"type": "message", "room": "team", "text": "after you left"})
        await olive.next("ack")
        await mem1.none("message")
        await mem2.none("message")
        mem1.send({"type": "join", "room": "team", "since": 0})
        self.assertEqual((await mem1.next("error", "joined"))["code"], "forbidden")
        for path in ("/api/rooms/team/messages", "/api/sessions/team/messages"):
            self.assertEqual((await self.call("GET", path, self.mem)).status, 404, path)
        self.assertEqual((await self.call("GET", "/api/sessions", self.mem)).json(), {"sessions": []})
        listed = (await self.call("GET", "/api/rooms", self.mem)).json()["rooms"]
        self.assertNotIn("team", [room["name"] for room in listed])


class MatrixTests(RoomsTestCase):

    async def test_member_routes_on_the_wire(self):
        """Invite: owner and moderator 201, member 403, outsider 404, the admin 201, the invitee told
        `invited` and the room `member`; roles: moderator 403, owner 200; nobody removes the owner (403);
        topic: member 403, owner 200 with a `room` frame; a direct room's members are fixed (403)."""
        await self.team()
        olive, out = await self.socket(self.olive), await self.socket(self.out)
        olive.send({"type": "join", "room": "team"})
        await olive.next("joined")
        extra = [await self.http.register(name) for name in ("uno", "dos", "tres")]
        u1 = await self.socket(extra[0])
        codes = [(await self.call("POST", "/api/rooms/team/members", who, {"user": whom})).status
                 for who, whom in ((self.olive, "uno"), (self.moe, "dos"), (self.mem, "tres"), (self.out, "tres"),
                                   (self.root, "tres"), (self.olive, "uno"))]
        self.assertEqual(codes, [201, 201, 403, 404, 201, 200])
        invited = await u1.next("invited")
        self.assertEqual((invited["by"], invited["room"]["name"], invited["room"]["owner"]), ("olive", "team", "olive"))
        self.assertEqual((await olive.next("member"))["user"], "uno")
        self.assertEqual((await self.call("PATCH", "/api/rooms/team/members/mem", self.moe, {"role": "moderator"})).status, 403)
        self.assertEqual((await self.call("PATCH", "/api/rooms/team/members/mem", self.olive, {"role": "moderator"})).json()["role"], "moderator")
        self.assertEqual((await self.call("DELETE", "/api/rooms/team/members/olive", self.moe)).status, 403)
        self.assertEqual((await self.call("PATCH", "/api/rooms/team", self.mem, {"topic": "x"})).status, 403)
        changed = await self.call("PATCH", "/api/rooms/team", self.olive, {"topic": "launch"})
        self.assertEqual((changed.status, changed.json()["topic"]), (200, "launch"))
        self.assertEqual((await olive.next("room"))["room"]["topic"], "launch")
        dm = (await self.call("POST", "/api/dms", self.out, {"users": ["mem"]})).json()["name"]
        self.assertEqual((await self.call("POST", f"/api/rooms/{dm}/members", self.out, {"user": "moe"})).status, 403)
        self.assertEqual((await self.call("DELETE", f"/api/rooms/{dm}/members/out", self.out)).status, 403)
        await out.none("invited")

    async def test_two_members_asking_at_once_get_one_direct_room(self):
        """olive and moe POST /api/dms for each other at the same moment: one 201 and one 200, the same room
        with two members, in both their sessions; mem gets 404 on it."""
        answers = await defer.gatherResults([
            defer.Deferred.fromCoroutine(self.call("POST", "/api/dms", self.olive, {"users": ["moe"]})),
            defer.Deferred.fromCoroutine(self.call("POST", "/api/dms", self.moe, {"users": ["olive"]}))])
        self.assertEqual(sorted(a.status for a in answers), [200, 201], answers)
        names = {a.json()["name"] for a in answers}
        self.assertEqual(len(names), 1)
        [name] = names
        self.assertRegex(name, r"^dm-[0-9a-f]{24}$")
        room = (await self.call("GET", f"/api/rooms/{name}", self.olive)).json()
        self.assertEqual((room["members"], room["visibility"], room["owner"]), (2, "direct", None))
        for session in (self.olive, self.moe):
            rooms = [s["room"] for s in (await self.call("GET", "/api/sessions", session)).json()["sessions"]]
            self.assertEqual(rooms, [name])
        self.assertEqual((await self.call("GET", f"/api/rooms/{name}/messages", self.mem)).status, 404)


T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


class MigrationTests(TestCase):
    timeout = 180

    async def _old_store(self, uri: str) -> None:
        """Rooms as chatd kept them before version 2: memberships and heads, no record, no schema version."""
        store = MongoStore(reactor, lambda: uri)
        store.startService()
        try:
            await wait_until(lambda: store.ready, 30, "the store")
            early = await store.create_user("early", "early@example.com", b"x", T0)
            late = await store.create_user("late", "late@example.com", b"x", T0)
            await store.add_membership("old", late.id, T0 + timedelta(minutes=5), 0)
            await store.add_membership("old", early.id, T0, 0)
            await store.advance_rooms({"quiet": (4, T0)})
            await store._db.rooms.update_many({}, {"$unset": {"visibility": "", "owner": "", "topic": "",
                                                               "created_at": ""}})
            await store._db.meta.delete_many({"_id": META_ID})
        finally:
            await store.stopService()

    async def _rooms(self, node, session) -> dict:
        rooms = (await node.client().request("GET", "/api/rooms", token=session["token"])).json()["rooms"]
        return {room["name"]: (room["visibility"], room["owner"], room["created_at"]) for room in rooms}

    async def test_two_processes_migrate_at_once_and_again_later(self):
        """Two chatd processes started together on an old store both come up; the old rooms are public, owned
        by their earliest member; the schema version is recorded; a third start later changes nothing."""
        uri = shared_store_uri()
        await self._old_store(uri)
        first, second = ChatdNode(self, "m1", uri, None), ChatdNode(self, "m2", uri, None)
        first.start(), second.start()
        await first.ready()
        await second.ready()
        viewer = await first.client().register("viewer")
        expected = {"old": ("public", "early", "2025-01-01T00:00:00.000Z"),
                    "quiet": ("public", None, "2025-01-01T00:00:00.000Z")}
        self.assertEqual(await self._rooms(first, viewer), expected)
        self.assertEqual(await self._rooms(second, viewer), expected)
        await second.stop()
        third = await ChatdNode(self, "m3", uri, None).start().ready()
        self.assertEqual(await self._rooms(third, viewer), expected)
        store = MongoStore(reactor, lambda: uri)
        store.startService()
        self.addCleanup(store.stopService)
        await wait_until(lambda: store.ready, 30, "the store")
        self.assertEqual((await store._db.meta.find_one({"_id": META_ID}))["version"], SCHEMA_VERSION)
