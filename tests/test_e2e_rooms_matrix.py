"""The room routes' permission matrix end to end (issue 12, Tests): one chatd on loopback sockets and the real
nx-27017 store, every route of SPEC.md's rooms API by each of the five standings (owner, moderator, member,
outsider, site admin) on a public, a private and a direct room, every refusal code, and the frames each
successful change sends.

The expected answers are SPEC.md's (REST API table; Details: Rooms and roles, Direct rooms) and, where it is
silent, docs/BEHAVIOUR.md's (Rooms and roles): a room the caller may not see is a 404 (private rooms to
outsiders, direct rooms to outsiders and admins), a room they may see but not act on is a 403; a site admin who
is not a member may see and manage a private room; a direct room's members are fixed and it has no owner.

Each table row is (who, method, path, body, expected status); an error status is checked with its SPEC.md
error code. A matrix test runs every row and reports every disagreement at once.
"""

from __future__ import annotations

import itertools

from twisted.trial.unittest import TestCase

from chatd.ratelimit import Rate
from tests.harness import start_server
from tests.wsclient import connect

OWNER, MODERATOR, MEMBER, OUTSIDER, ADMIN = "owner", "moderator", "member", "outsider", "admin"
STANDINGS = (OWNER, MODERATOR, MEMBER, OUTSIDER, ADMIN)
# Who stands where. In the direct room (olive, moe, mem and gus) owner, moderator and member are its
# plain members: a direct room has no owner and no moderators.
USERS = {OWNER: "olive", MODERATOR: "moe", MEMBER: "mem", OUTSIDER: "out", ADMIN: "root"}
GUEST = "gus"  # one more member of every room: whom the removal rows remove
KINDS = ("public", "private", "direct")
ERRORS = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict"}


class Route:
    """One route of the matrix: its method, path and body (``{room}``, ``{me}`` and ``{new}``, a user
    registered for the row, are filled in), and per room kind the status expected from each standing, in
    the order of STANDINGS. ``fresh``: the route changes the room, so each row gets a room of its own."""

    def __init__(self, method, path, body, expected, fresh=False):
        self.method, self.path, self.body, self.expected, self.fresh = method, path, body, expected, fresh


#                                                                       owner moder member outsdr admin
MATRIX = {
    "read the room": Route("GET", "/api/rooms/{room}", None, {
        "public":                                                      (200,  200,  200,  200,  200),
        "private":                                                     (200,  200,  200,  404,  200),
        "direct":                                                      (200,  200,  200,  404,  404)}),
    "change the topic": Route("PATCH", "/api/rooms/{room}", {"topic": "set by {me}"}, {
        "public":                                                      (200,  403,  403,  403,  200),
        "private":                                                     (200,  403,  403,  404,  200),
        "direct":                                                      (403,  403,  403,  404,  404)}, fresh=True),
    "change the visibility": Route("PATCH", "/api/rooms/{room}", {"visibility": "private"}, {
        "public":                                                      (200,  403,  403,  403,  200),
        "private":                                                     (200,  403,  403,  404,  200),
        "direct":                                                      (403,  403,  403,  404,  404)}, fresh=True),
    "list the members": Route("GET", "/api/rooms/{room}/members", None, {
        "public":                                                      (200,  200,  200,  200,  200),
        "private":                                                     (200,  200,  200,  404,  200),
        "direct":                                                      (200,  200,  200,  404,  404)}),
    "invite a member": Route("POST", "/api/rooms/{room}/members", {"user": "{new}"}, {
        "public":                                                      (201,  201,  403,  403,  201),
        "private":                                                     (201,  201,  403,  404,  201),
        "direct":                                                      (403,  403,  403,  404,  404)}),
    "invite a moderator": Route("POST", "/api/rooms/{room}/members", {"user": "{new}", "role": "moderator"}, {
        "public":                                                      (201,  403,  403,  403,  201),
        "private":                                                     (201,  403,  403,  404,  201),
        "direct":                                                      (403,  403,  403,  404,  404)}),
    "invite a member again": Route("POST", "/api/rooms/{room}/members", {"user": GUEST}, {
        "public":                                                      (200,  200,  403,  403,  200),
        "private":                                                     (200,  200,  403,  404,  200),
        "direct":                                                      (403,  403,  403,  404,  404)}),
    "make a member moderator": Route("PATCH", "/api/rooms/{room}/members/" + GUEST, {"role": "moderator"}, {
        "public":                                                      (200,  403,  403,  403,  200),
        "private":                                                     (200,  403,  403,  404,  200),
        "direct":                                                      (403,  403,  403,  404,  404)}, fresh=True),
    "hand the room over": Route("PATCH", "/api/rooms/{room}/members/" + GUEST, {"role": "owner"}, {
        "public":                                                      (200,  403,  403,  403,  200),
        "private":                                                     (200,  403,  403,  404,  200),
        "direct":                                                      (403,  403,  403,  404,  404)}, fresh=True),
    "remove a member": Route("DELETE", "/api/rooms/{room}/members/" + GUEST, None, {
        "public":                                                      (204,  204,  403,  403,  204),
        "private":                                                     (204,  204,  403,  404,  204),
        "direct":                                                      (403,  403,  403,  404,  404)}, fresh=True),
    "remove the owner": Route("DELETE", "/api/rooms/{room}/members/olive", None, {
        # the owner's own row is leaving; nobody removes the owner, an admin neither (SPEC.md: "owner or
        # moderator (not the owner)"; Details: owners and moderators "remove members other than the owner",
        # a site admin "may do all of it")
        "public":                                                      (204,  403,  403,  403,  403),
        "private":                                                     (204,  403,  403,  404,  403),
        "direct":                                                      (403,  403,  403,  404,  404)}, fresh=True),
    "leave (remove myself)": Route("DELETE", "/api/rooms/{room}/members/{me}", None, {
        # outsider and admin are no members: there is no membership to end
        "public":                                                      (204,  204,  204,  404,  404),
        "private":                                                     (204,  204,  204,  404,  404),
        "direct":                                                      (403,  403,  403,  404,  404)}, fresh=True),
}

#                         owner  moder  member outsdr admin
LISTED = {"public":      (True,  True,  True,  True,  True),
          "private":     (True,  True,  True,  False, False),
          "direct":      (True,  True,  True,  False, False)}
JOINS = {"public":       ("joined", "joined", "joined", "joined", "joined"),
         "private":      ("joined", "joined", "joined", "forbidden", "joined"),
         "direct":       ("joined", "joined", "joined", "forbidden", "forbidden")}


def fill(value, **names):
    """``value`` (a path, or a body of strings) with ``{room}``, ``{me}`` and ``{new}`` replaced."""
    if isinstance(value, str):
        for key, name in names.items():
            value = value.replace("{" + key + "}", name)
        return value
    if isinstance(value, dict):
        return {k: fill(v, **names) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, **names) for v in value]
    return value


class MatrixCase(TestCase):
    """One chatd (in this process, on 127.0.0.1) on a fresh database: root (the first user: a site admin),
    olive, moe, mem, gus and out registered; ``room(kind)`` makes a room where olive owns (or, direct, is a
    member), moe moderates, mem and gus are members."""

    timeout = 240

    async def setUp(self):
        self.server = await start_server(self, auth_rate=Rate(0, 0))  # many registrations, one address
        self.http = self.server.client()
        self.sessions = {}
        for name in ("root", "olive", "moe", "mem", "gus", "out"):
            self.sessions[name] = await self.http.register(name)
        self.assertEqual(self.sessions["root"]["user"]["role"], "admin")
        self._numbers = itertools.count(1)
        dm = await self.call("olive", "POST", "/api/dms", {"users": ["moe", "mem", GUEST]})
        self.assertEqual(dm.status, 201, dm)
        self.dm = dm.json()["name"]

    async def call(self, who, method, path, body=None):
        """A request as ``who`` (a username), or without a token when ``who`` is None."""
        token = self.sessions[who]["token"] if who is not None else None
        return await self.http.request(method, path, body, token=token)

    async def room(self, kind: str) -> str:
        """A new public or private room as described above, or the direct room."""
        if kind == "direct":
            return self.dm
        name = f"{kind}-{next(self._numbers)}"
        steps = [("POST", "/api/rooms", {"name": name, "visibility": kind}),
                 ("POST", f"/api/rooms/{name}/members", {"user": "moe", "role": "moderator"}),
                 ("POST", f"/api/rooms/{name}/members", {"user": "mem"}),
                 ("POST", f"/api/rooms/{name}/members", {"user": GUEST})]
        for method, path, body in steps:
            response = await self.call("olive", method, path, body)
            self.assertEqual(response.status, 201, (path, body, response))
        return name

    async def new_user(self) -> str:
        name = f"new{next(self._numbers)}"
        self.sessions[name] = await self.http.register(name)
        return name

    async def socket(self, who, *rooms):
        """A socket of ``who``, past its hello, that joined ``rooms``."""
        ws = await connect(self.server.url, self.sessions[who]["token"], test=self)
        await ws.next("hello")
        for room in rooms:
            ws.send({"type": "join", "room": room})
            self.assertEqual((await ws.next("joined", "error"))["type"], "joined", room)
        return ws

    async def check(self, rows, **names) -> list[str]:
        """Run rows of (who, method, path, body, expected status); every disagreement, as text."""
        wrong = []
        for who, method, path, body, expected in rows:
            path, body = fill(path, **names), fill(body, **names)
            response = await self.call(who, method, path, body)
            got = (response.status, response.code if response.status >= 400 else None)
            if got != (expected, ERRORS.get(expected)):
                wrong.append(f"{who} {method} {path} {body}: expected {expected} {ERRORS.get(expected, '')},"
                             f" got {response!r}")
        return wrong

    def assertNothingWrong(self, wrong):
        self.assertEqual(wrong, [], "\n" + "\n".join(wrong))


class RouteMatrixTests(MatrixCase):

    async def _matrix(self, *routes):
        wrong = []
        for label in routes:
            route = MATRIX[label]
            for kind in KINDS:
                shared = await self.room(kind)
                for standing, expected in zip(STANDINGS, route.expected[kind]):
                    room = await self.room(kind) if route.fresh else shared
                    me = USERS[standing]
                    new = await self.new_user() if "{new}" in str(route.body) else ""
                    row = (me, route.method, route.path, route.body, expected)
                    wrong += [f"[{label}, {kind}, {standing}] {w}"
                              for w in await self.check([row], room=room, me=me, new=new)]
        self.assertNothingWrong(wrong)

    async def test_reading_a_room_and_its_members(self):
        """GET /api/rooms/{room} and GET .../members: open to all on a public room, to members and admins on a
        private one (outsider 404), to members only on a direct one (outsider and admin 404)."""
        await self._matrix("read the room", "list the members")

    async def test_changing_a_room(self):
        """PATCH /api/rooms/{room} (topic, visibility): owner and admin 200; moderator and member 403; the
        outsider 403 where they see the room, 404 where they do not; nobody changes a direct room (403 to its
        members, 404 to others)."""
        await self._matrix("change the topic", "change the visibility")

    async def test_inviting(self):
        """POST .../members: owner, moderator and admin invite (201; 200 for a member already), only owner and
        admin invite a moderator; the member 403; the outsider 403 or 404; a direct room 403 to its members."""
        await self._matrix("invite a member", "invite a moderator", "invite a member again")

    async def test_changing_roles(self):
        """PATCH .../members/{user}: owner and admin change roles and hand the room over (200); moderator and
        member 403; the outsider 403 or 404; a direct room has no roles to change (403 to its members)."""
        await self._matrix("make a member moderator", "hand the room over")

    async def test_removing_and_leaving(self):
        """DELETE .../members/{user}: owner, moderator and admin remove a member (204), nobody removes the owner
        (403, the admin included) but the owner may leave; anyone leaves (204); a non-member has no membership
        to end (404); nobody is removed from or leaves a direct room (403)."""
        await self._matrix("remove a member", "remove the owner", "leave (remove myself)")

    async def test_the_room_list(self):
        """GET /api/rooms answers 200 to everyone: a public room is listed to all, a private or direct room to
        its members only (not to outsiders, nor to an admin who is not a member)."""
        wrong = []
        for kind in KINDS:
            room = await self.room(kind)
            for standing, listed in zip(STANDINGS, LISTED[kind]):
                response = await self.call(USERS[standing], "GET", "/api/rooms")
                names = [r["name"] for r in response.json()["rooms"]] if response.status == 200 else None
                if response.status != 200 or (room in names) != listed:
                    wrong.append(f"[{kind}, {standing}] GET /api/rooms: {room} listed {listed}? got {response!r}")
        self.assertNothingWrong(wrong)

    async def test_join_matrix(self):
        """The join frame: anyone joins a public room; a private room its members and an admin (who becomes a
        member), `forbidden` to the outsider; a direct room its members only, `forbidden` to outsider and admin."""
        wrong = []
        for kind in KINDS:
            for standing, expected in zip(STANDINGS, JOINS[kind]):
                room = await self.room(kind)
                ws = await self.socket(USERS[standing])
                ws.send({"type": "join", "room": room})
                frame = await ws.next("joined", "error")
                got = "joined" if frame["type"] == "joined" else frame.get("code")
                if got != expected:
                    wrong.append(f"[{kind}, {standing}] join {room}: expected {expected}, got {frame}")
                await ws.close()
        self.assertNothingWrong(wrong)

    async def test_creating_rooms_and_direct_rooms(self):
        """POST /api/rooms: every standing creates a room (201) and owns it; POST /api/dms: every standing opens
        a direct room with someone (201), asking again or being asked by the other gives the same room (200)."""
        wrong = []
        for standing in STANDINGS:
            me = USERS[standing]
            created = await self.call(me, "POST", "/api/rooms", {"name": f"by-{me}", "visibility": "private",
                                                                  "topic": "mine"})
            if created.status != 201 or (created.json()["owner"], created.json()["visibility"],
                                         created.json()["topic"]) != (me, "private", "mine"):
                wrong.append(f"[{standing}] POST /api/rooms: {created!r}")
            other = await self.new_user()
            first = await self.call(me, "POST", "/api/dms", {"users": [other]})
            again = await self.call(me, "POST", "/api/dms", {"users": [other, me]})
            theirs = await self.call(other, "POST", "/api/dms", {"users": [me]})
            statuses = (first.status, again.status, theirs.status)
            if statuses != (201, 200, 200) or len({r.json()["name"] for r in (first, again, theirs)}) != 1:
                wrong.append(f"[{standing}] POST /api/dms: {first!r} {again!r} {theirs!r}")
            elif (first.json()["visibility"], first.json()["owner"], first.json()["members"]) != ("direct", None, 2):
                wrong.append(f"[{standing}] POST /api/dms made {first.json()}")
        self.assertNothingWrong(wrong)


class RefusalTests(MatrixCase):

    async def test_401_without_a_token_on_every_route(self):
        """Every room route without a token, and with a forged one, is 401 `unauthorized`, before its body is
        looked at (a bad body too)."""
        public = await self.room("public")
        routes = [("GET", "/api/rooms", None), ("POST", "/api/rooms", {"name": "x1", "visibility": "public"}),
                  ("POST", "/api/rooms", {"bad": 1}),
                  ("GET", "/api/rooms/{room}", None), ("PATCH", "/api/rooms/{room}", {"topic": "t"}),
                  ("PATCH", "/api/rooms/{room}", {}),
                  ("GET", "/api/rooms/{room}/members", None), ("POST", "/api/rooms/{room}/members", {"user": "out"}),
                  ("PATCH", "/api/rooms/{room}/members/mem", {"role": "moderator"}),
                  ("DELETE", "/api/rooms/{room}/members/mem", None), ("POST", "/api/dms", {"users": ["mem"]}),
                  ("POST", "/api/dms", {"users": 5})]
        wrong = await self.check([(None, m, p, b, 401) for m, p, b in routes], room=public)
        for method, path, body in routes:
            response = await self.http.request(method, fill(path, room=public), body, token="not.a.jwt")
            if (response.status, response.code) != (401, "unauthorized"):
                wrong.append(f"forged token {method} {path}: {response!r}")
        self.assertNothingWrong(wrong)

    async def test_400_bad_bodies(self):
        """Bad bodies are 400 `invalid_request`: missing, unknown or non-string fields, bad room names (also the
        direct rooms' `dm-` form), a bad visibility or role, an over-long topic, a body that is not a JSON
        object, the owner taking their own role away, and POST /api/dms without 1 to 8 existing other users."""
        room = await self.room("public")
        nine = [await self.new_user() for _ in range(9)]
        m = "/api/rooms/{room}/members"
        rows = [
            ("olive", "POST", "/api/rooms", {}, 400),
            ("olive", "POST", "/api/rooms", {"name": "x2"}, 400),
            ("olive", "POST", "/api/rooms", {"visibility": "public"}, 400),
            ("olive", "POST", "/api/rooms", {"name": "x3", "visibility": "public", "color": "red"}, 400),
            ("olive", "POST", "/api/rooms", {"name": "x4", "visibility": "direct"}, 400),
            ("olive", "POST", "/api/rooms", {"name": "x5", "visibility": "secret"}, 400),
            ("olive", "POST", "/api/rooms", {"name": "has space", "visibility": "public"}, 400),
            ("olive", "POST", "/api/rooms", {"name": "", "visibility": "public"}, 400),
            ("olive", "POST", "/api/rooms", {"name": "n" * 65, "visibility": "public"}, 400),
            ("olive", "POST", "/api/rooms", {"name": "dm-0123456789abcdef01234567", "visibility": "private"}, 400),
            ("olive", "POST", "/api/rooms", {"name": {"$ne": ""}, "visibility": "public"}, 400),
            ("olive", "POST", "/api/rooms", {"name": "x6", "visibility": "public", "topic": 5}, 400),
            ("olive", "POST", "/api/rooms", {"name": "x7", "visibility": "public", "topic": "t" * 251}, 400),
            ("olive", "POST", "/api/rooms", ["x8"], 400),
            ("olive", "PATCH", "/api/rooms/{room}", {}, 400),
            ("olive", "PATCH", "/api/rooms/{room}", {"name": "renamed"}, 400),
            ("olive", "PATCH", "/api/rooms/{room}", {"visibility": "direct"}, 400),
            ("olive", "PATCH", "/api/rooms/{room}", {"topic": None}, 400),
            ("olive", "PATCH", "/api/rooms/{room}", {"owner": "mem"}, 400),
            ("olive", "POST", m, {}, 400),
            ("olive", "POST", m, {"user": "out", "role": "owner"}, 400),
            ("olive", "POST", m, {"user": "out", "role": "admin"}, 400),
            ("olive", "POST", m, {"user": "out", "extra": True}, 400),
            ("olive", "POST", m, {"user": ["out"]}, 400),
            ("olive", "PATCH", m + "/mem", {}, 400),
            ("olive", "PATCH", m + "/mem", {"role": "admin"}, 400),
            ("olive", "PATCH", m + "/mem", {"role": "moderator", "extra": 1}, 400),
            ("olive", "PATCH", m + "/mem", {"role": 1}, 400),
            ("olive", "PATCH", m + "/olive", {"role": "moderator"}, 400),
            ("root", "PATCH", m + "/olive", {"role": "member"}, 400),
            ("olive", "POST", "/api/dms", {}, 400),
            ("olive", "POST", "/api/dms", {"users": []}, 400),
            ("olive", "POST", "/api/dms", {"users": "mem"}, 400),
            ("olive", "POST", "/api/dms", {"users": [5]}, 400),
            ("olive", "POST", "/api/dms", {"users": ["mem"], "topic": "x"}, 400),
            ("olive", "POST", "/api/dms", {"users": ["ghost"]}, 400),
            ("olive", "POST", "/api/dms", {"users": ["olive"]}, 400),
            ("olive", "POST", "/api/dms", {"users": nine}, 400),
        ]
        wrong = await self.check(rows, room=room)
        for path in ("/api/rooms", f"/api/rooms/{room}/members"):
            response = await self.http.request("POST", path, raw=b"{not json", token=self.sessions["olive"]["token"])
            if (response.status, response.code) != (400, "invalid_request"):
                wrong.append(f"POST {path} with a body that is not JSON: {response!r}")
        self.assertNothingWrong(wrong)

    async def test_404_unknown_rooms_and_users(self):
        """An unknown or malformed room is 404 on every room route, to the admin too; an unknown (or banned)
        user is 404 when invited, re-roled or removed, and so is a user who is not a member."""
        room = await self.room("private")
        banned = await self.new_user()
        ban = await self.call("root", "POST", f"/api/users/{self.sessions[banned]['user']['id']}/ban",
                              {"reason": "spam"})
        self.assertEqual(ban.status, 204, ban)
        rows = []
        for who in ("olive", "root"):
            for bad in ("nowhere", "bad%20name", "dm-0123456789abcdef01234567"):
                rows += [(who, "GET", f"/api/rooms/{bad}", None, 404),
                         (who, "PATCH", f"/api/rooms/{bad}", {"topic": "t"}, 404),
                         (who, "GET", f"/api/rooms/{bad}/members", None, 404),
                         (who, "POST", f"/api/rooms/{bad}/members", {"user": "out"}, 404),
                         (who, "PATCH", f"/api/rooms/{bad}/members/mem", {"role": "moderator"}, 404),
                         (who, "DELETE", f"/api/rooms/{bad}/members/mem", None, 404)]
        m = "/api/rooms/{room}/members"
        rows += [("olive", "POST", m, {"user": "ghost"}, 404),
                 ("olive", "POST", m, {"user": "out@example.com"}, 404),
                 ("olive", "POST", m, {"user": banned}, 404),
                 ("olive", "PATCH", m + "/ghost", {"role": "moderator"}, 404),
                 ("olive", "PATCH", m + "/out", {"role": "moderator"}, 404),
                 ("olive", "PATCH", m + "/out", {"role": "owner"}, 404),
                 ("olive", "DELETE", m + "/ghost", None, 404),
                 ("olive", "DELETE", m + "/out", None, 404),
                 ("moe", "DELETE", m + "/out", None, 404)]
        self.assertNothingWrong(await self.check(rows, room=room))
        members = (await self.call("olive", "GET", f"/api/rooms/{room}/members")).json()["members"]
        self.assertNotIn(banned, [m["user"] for m in members])

    async def test_409_taken_room_names(self):
        """POST /api/rooms with a name taken by a public room, a private room or a room made by `join` is 409
        `conflict` to everyone (names are shared by all visibilities); nothing about the room changes."""
        public, private = await self.room("public"), await self.room("private")
        ws = await self.socket("out", "joined-by-frame")
        rows = [(USERS[standing], "POST", "/api/rooms", {"name": name, "visibility": visibility}, 409)
                for standing in STANDINGS
                for name in (public, private, "joined-by-frame")
                for visibility in ("public", "private")]
        self.assertNothingWrong(await self.check(rows))
        room = (await self.call("olive", "GET", f"/api/rooms/{private}")).json()
        self.assertEqual((room["visibility"], room["owner"], room["members"]), ("private", "olive", 4))
        self.assertEqual((await self.call("out", "GET", "/api/rooms/joined-by-frame")).json()["owner"], "out")
        await ws.close()

    async def test_403_forbidden_cases(self):
        """403 `forbidden`: a member invites, removes or re-roles; a moderator invites a moderator, re-roles,
        changes the room or removes the owner; the admin removes the owner; on a direct room its members invite,
        remove, leave, re-role or change it; `forbidden` on join of a private room (outsider) and of a direct
        room (outsider, admin)."""
        public, private = await self.room("public"), await self.room("private")
        m = "/api/rooms/{room}/members"
        rows = [("mem", "POST", m, {"user": "out"}, 403),
                ("mem", "DELETE", m + "/gus", None, 403),
                ("mem", "PATCH", m + "/gus", {"role": "moderator"}, 403),
                ("mem", "PATCH", m + "/mem", {"role": "moderator"}, 403),
                ("moe", "POST", m, {"user": "out", "role": "moderator"}, 403),
                ("moe", "PATCH", m + "/gus", {"role": "moderator"}, 403),
                ("moe", "PATCH", m + "/moe", {"role": "owner"}, 403),
                ("moe", "PATCH", "/api/rooms/{room}", {"topic": "mine"}, 403),
                ("moe", "DELETE", m + "/olive", None, 403),
                ("root", "DELETE", m + "/olive", None, 403)]
        direct = [(who, "POST", m, {"user": "out"}, 403) for who in ("olive", "moe", "mem")]
        direct += [(who, "DELETE", m + "/gus", None, 403) for who in ("olive", "moe", "mem")]
        direct += [(who, "DELETE", m + f"/{who}", None, 403) for who in ("olive", "moe", "mem", GUEST)]
        direct += [("olive", "PATCH", m + "/mem", {"role": "moderator"}, 403),
                   ("mem", "PATCH", "/api/rooms/{room}", {"topic": "ours"}, 403),
                   ("mem", "PATCH", "/api/rooms/{room}", {"visibility": "public"}, 403)]
        wrong = await self.check(rows, room=public) + await self.check(rows, room=private)
        wrong += await self.check(direct, room=self.dm)
        for who, room in (("out", private), ("out", self.dm), ("root", self.dm)):
            ws = await self.socket(who)
            for frame in ({"type": "join", "room": room}, {"type": "join", "room": room, "since": 0}):
                ws.send(frame)
                answer = await ws.next("joined", "error")
                if (answer["type"], answer.get("code")) != ("error", "forbidden"):
                    wrong.append(f"{who} {frame}: {answer}")
            await ws.close()
        self.assertNothingWrong(wrong)
        members = (await self.call("olive", "GET", f"/api/rooms/{self.dm}/members")).json()["members"]
        self.assertEqual(sorted(m["user"] for m in members), ["gus", "mem", "moe", "olive"])


class FrameTests(MatrixCase):

    async def test_invited_to_every_socket_of_the_invitee_and_member_to_the_room(self):
        """An invitation sends `invited` (the Room, `by`) to each of the invitee's sockets, joined to nothing,
        and `member` `added` with the role to the room's sockets; an invitation again sends neither."""
        room = await self.room("private")
        olive, mem = await self.socket("olive", room), await self.socket("mem", room)
        first, second, other = await self.socket("out"), await self.socket("out"), await self.socket("root")
        answer = await self.call("moe", "POST", f"/api/rooms/{room}/members", {"user": "out"})
        self.assertEqual((answer.status, answer.json()["user"], answer.json()["role"]), (201, "out", "member"))
        for ws in (first, second):
            invited = await ws.next("invited")
            self.assertEqual((invited["by"], invited["room"]["name"], invited["room"]["visibility"],
                              invited["room"]["owner"], invited["room"]["members"]), ("moe", room, "private", "olive", 5))
        for ws in (olive, mem):
            self.assertEqual(await ws.next("member"),
                             {"type": "member", "room": room, "user": "out", "event": "added", "role": "member"})
        await other.none("invited")
        await self.call("olive", "POST", f"/api/rooms/{room}/members", {"user": "out", "role": "moderator"})
        await first.none("invited")
        await olive.none("member")
        promoted = await self.call("root", "POST", f"/api/rooms/{room}/members", {"user": "root", "role": "moderator"})
        self.assertEqual(promoted.status, 201, promoted)
        self.assertEqual((await mem.next("member"))["role"], "moderator")

    async def test_room_frame_on_patch(self):
        """PATCH /api/rooms/{room} by owner or admin sends `room` with the new Room to the room's sockets, and
        nothing to a socket that did not join it."""
        room = await self.room("public")
        moe, outsider = await self.socket("moe", room), await self.socket("out")
        for who, change in (("olive", {"topic": "launch"}), ("root", {"visibility": "private"})):
            answer = await self.call(who, "PATCH", f"/api/rooms/{room}", change)
            self.assertEqual(answer.status, 200, answer)
            frame = await moe.next("room")
            self.assertEqual(frame["room"], answer.json())
            self.assertEqual(frame["room"][next(iter(change))], next(iter(change.values())))
        await outsider.none("room")

    async def test_left_with_reason_removed_to_the_removed_member(self):
        """A member removed by a moderator gets `left` with `reason` "removed" on each socket that joined the
        room, and the room `member` `removed`; no further message reaches them."""
        room = await self.room("private")
        olive, gus1, gus2 = await self.socket("olive", room), await self.socket(GUEST, room), await self.socket(GUEST, room)
        self.assertEqual((await self.call("moe", "DELETE", f"/api/rooms/{room}/members/{GUEST}")).status, 204)
        for ws in (gus1, gus2):
            self.assertEqual(await ws.next("left"), {"type": "left", "room": room, "reason": "removed"})
        self.assertEqual(await olive.next("member"),
                         {"type": "member", "room": room, "user": GUEST, "event": "removed", "role": "member"})
        olive.send({"type": "message", "room": room, "text": "after", "client_id": "c1"})
        await olive.next("ack")
        await gus1.none("message")
        await gus2.none("message")

    async def test_left_without_reason_on_leaving_by_delete(self):
        """A member who removes themselves by DELETE gets `left` without `reason` on each socket that joined the
        room; the room hears `member` `removed`."""
        room = await self.room("public")
        olive, mem1, mem2 = await self.socket("olive", room), await self.socket("mem", room), await self.socket("mem", room)
        self.assertEqual((await self.call("mem", "DELETE", f"/api/rooms/{room}/members/mem")).status, 204)
        for ws in (mem1, mem2):
            self.assertEqual(await ws.next("left"), {"type": "left", "room": room})
        self.assertEqual((await olive.next("member"))[ "event"], "removed")
        members = (await self.call("olive", "GET", f"/api/rooms/{room}/members")).json()["members"]
        self.assertNotIn("mem", [m["user"] for m in members])

    async def test_handing_over_makes_the_old_owner_a_moderator(self):
        """PATCH .../members/{user} `{"role": "owner"}`: 200 with the new owner; the room hears `member` `role`
        `moderator` for the old owner and `role` `owner` for the new one; the Room and the member list agree;
        the old owner can no longer change roles (403)."""
        room = await self.room("private")
        olive, mem = await self.socket("olive", room), await self.socket("mem", room)
        answer = await self.call("olive", "PATCH", f"/api/rooms/{room}/members/{GUEST}", {"role": "owner"})
        self.assertEqual((answer.status, answer.json()["user"], answer.json()["role"]), (200, GUEST, "owner"))
        for ws in (olive, mem):
            frames = [await ws.next("member"), await ws.next("member")]
            self.assertIn({"type": "member", "room": room, "user": "olive", "event": "role", "role": "moderator"},
                          frames)
            self.assertIn({"type": "member", "room": room, "user": GUEST, "event": "role", "role": "owner"}, frames)
        self.assertEqual((await self.call("mem", "GET", f"/api/rooms/{room}")).json()["owner"], GUEST)
        roles = {m["user"]: m["role"] for m in
                 (await self.call("mem", "GET", f"/api/rooms/{room}/members")).json()["members"]}
        self.assertEqual(roles, {"olive": "moderator", "moe": "moderator", "mem": "member", GUEST: "owner"})
        refused = await self.call("olive", "PATCH", f"/api/rooms/{room}/members/mem", {"role": "moderator"})
        self.assertEqual((refused.status, refused.code), (403, "forbidden"))

    async def test_role_change_and_owner_leaving_are_told_to_the_room(self):
        """A role change by the owner sends `member` `role`; an owner who leaves by DELETE hands the room to the
        moderator who joined earliest, and the room hears `member` `role` `owner`."""
        room = await self.room("public")
        mem = await self.socket("mem", room)
        self.assertEqual((await self.call("olive", "PATCH", f"/api/rooms/{room}/members/{GUEST}",
                                          {"role": "moderator"})).status, 200)
        self.assertEqual(await mem.next("member"),
                         {"type": "member", "room": room, "user": GUEST, "event": "role", "role": "moderator"})
        self.assertEqual((await self.call("olive", "DELETE", f"/api/rooms/{room}/members/olive")).status, 204)
        frames = [await mem.next("member"), await mem.next("member")]
        self.assertIn({"type": "member", "room": room, "user": "olive", "event": "removed", "role": "owner"}, frames)
        self.assertIn({"type": "member", "room": room, "user": "moe", "event": "role", "role": "owner"}, frames)
        self.assertEqual((await self.call("mem", "GET", f"/api/rooms/{room}")).json()["owner"], "moe")

    async def test_a_new_direct_room_invites_the_others(self):
        """POST /api/dms sends `invited` (the direct Room, `by` the caller) to every socket of each other member,
        not to the caller; asking for it again sends nothing."""
        others = [await self.new_user(), await self.new_user()]
        sockets = {name: [await self.socket(name), await self.socket(name)] for name in others}
        caller = await self.socket("out")
        answer = await self.call("out", "POST", "/api/dms", {"users": others})
        self.assertEqual(answer.status, 201, answer)
        for name in others:
            for ws in sockets[name]:
                invited = await ws.next("invited")
                self.assertEqual((invited["by"], invited["room"]), ("out", answer.json()))
        await caller.none("invited")
        self.assertEqual((await self.call(others[0], "POST", "/api/dms", {"users": ["out", others[1]]})).status, 200)
        for ws in (*sockets[others[1]], caller):
            await ws.none("invited")
