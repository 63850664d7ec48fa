"""Rooms, roles, members and direct rooms through the real Klein routes on the chat harness (StubTreq and
MemoryStore): every route's permission matrix (owner, moderator, member, outsider, site admin), its refusal
codes, and what members' sockets are told (SPEC.md: Rooms and roles, Direct rooms, Guarantees)."""

from __future__ import annotations

import json

from treq.testing import StubTreq

from chatd.chat.editing import MessageEditor
from chatd.web.api.rooms import RoomRoutes
from tests.chatharness import ChatTestCase


class RoomsTestCase(ChatTestCase):
    """root (the site admin), and in the private room ``team``: olive (owner), mo (moderator), mem (member);
    out is signed in and in no room. Each has a socket; the members' sockets joined ``team``."""

    def setUp(self):
        super().setUp()
        editor = MessageEditor(self.store, self.chat.rooms, self.chat.events, self.clock, self.chat.access)
        self.http = StubTreq(RoomRoutes(self.chat.accounts, self.chat.history, editor, self.chat.access,
                                        self.chat.catalog, self.chat.members, self.chat.direct).app.resource())
        self.root, self.olive, self.mo, self.mem, self.out = (
            self.chat.connect(name) for name in ("root", "olive", "mo", "mem", "out"))
        status, room = self.call("POST", "/rooms", self.olive, {"name": "team", "visibility": "private",
                                                                 "topic": "plans"})
        assert status == 201, room
        self.call("POST", "/rooms/team/members", self.olive, {"user": "mo", "role": "moderator"})
        self.call("POST", "/rooms/team/members", self.olive, {"user": "mem"})
        for conn in (self.olive, self.mo, self.mem):
            self.chat.join(conn, "team")
        self.chat.say(self.olive, "secret plan", room="team")
        for conn in (self.root, self.olive, self.mo, self.mem, self.out):
            conn.take()

    def call(self, method: str, path: str, conn=None, body=None) -> tuple[int, dict | None]:
        """``method path`` with ``conn``'s token and a JSON ``body``: the status and the JSON answer."""
        headers = {"Authorization": f"Bearer {conn.token}"} if conn is not None else {}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        response = self.successResultOf(self.http.request(method, "http://chatd.test" + path, headers=headers,
                                                          data=data))
        raw = self.successResultOf(response.content())
        return response.code, json.loads(raw) if raw else None

    def code(self, method, path, conn, body=None):
        return self.call(method, path, conn, body)[0]


class CreateAndReadTests(RoomsTestCase):

    def test_created_room_has_the_room_shape_and_its_creator_owns_it(self):
        """POST /api/rooms answers 201 with SPEC.md's Room, the caller its owner and only member."""
        status, room = self.call("POST", "/rooms", self.out, {"name": "mine", "visibility": "public"})
        self.assertEqual(status, 201)
        self.assertEqual(set(room), {"name", "visibility", "topic", "owner", "members", "online", "created_at",
                                     "last_message_at"})
        self.assertEqual((room["name"], room["visibility"], room["topic"], room["owner"], room["members"]),
                         ("mine", "public", "", "out", 1))

    def test_taken_names_and_bad_bodies_are_refused(self):
        """A taken name is 409 whatever made it (POST or a join); bad visibility, unknown fields, a dm- name,
        a non-string are 400; no token is 401."""
        self.chat.join(self.out, "lobby")
        for name in ("team", "lobby"):
            status, body = self.call("POST", "/rooms", self.out, {"name": name, "visibility": "public"})
            self.assertEqual((status, body["error"]["code"]), (409, "conflict"), name)
        for bad in ({"name": "x", "visibility": "direct"}, {"name": "x"}, {"name": "x", "visibility": "public",
                    "color": "red"}, {"name": "dm-0123456789abcdef01234567", "visibility": "private"},
                    {"name": {"$ne": ""}, "visibility": "public"}, {"name": "a b", "visibility": "public"}):
            self.assertEqual(self.code("POST", "/rooms", self.out, bad), 400, bad)
        self.assertEqual(self.code("POST", "/rooms", None, {"name": "x", "visibility": "public"}), 401)

    def test_get_room_matrix(self):
        """GET /api/rooms/{room}: members and the admin 200; an outsider 404 as for a room that does not exist."""
        for conn in (self.olive, self.mo, self.mem, self.root):
            status, room = self.call("GET", "/rooms/team", conn)
            self.assertEqual((status, room["owner"], room["members"], room["topic"]), (200, "olive", 3, "plans"))
        self.assertEqual(self.call("GET", "/rooms/team", self.out), self.call("GET", "/rooms/nowhere", self.out))
        self.assertEqual(self.code("GET", "/rooms/team", self.out), 404)

    def test_room_list_hides_private_rooms_from_outsiders(self):
        """GET /api/rooms: public rooms with a member for all; the private room only for its members."""
        self.chat.join(self.out, "lobby")
        names = lambda conn: [room["name"] for room in self.call("GET", "/rooms", conn)[1]["rooms"]]  # noqa: E731
        self.assertEqual(names(self.out), ["lobby"])
        self.assertEqual(names(self.root), ["lobby"])
        self.assertEqual(names(self.mem), ["lobby", "team"])


class PrivacyTests(RoomsTestCase):

    def test_history_by_both_routes_is_404_for_outsiders(self):
        """An outsider (the admin too, not being a member) gets 404 on the room's history, read positions and
        session history; members read it."""
        for conn in (self.out, self.root):
            for path in ("/rooms/team/messages", "/sessions/team/messages", "/rooms/team/reads",
                         "/rooms/team/members"):
                if conn is self.root and path.endswith("members"):
                    continue  # the admin may see who is in it
                self.assertEqual(self.code("GET", path, conn), 404, (conn.username, path))
        status, page = self.call("GET", "/rooms/team/messages", self.mem)
        self.assertEqual((status, [m["text"] for m in page["messages"]]), (200, ["secret plan"]))

    def test_join_of_a_private_room_is_forbidden_to_outsiders(self):
        """An outsider's join (with or without since) is refused with forbidden and no history; the admin's
        join makes them a member, visible in the members list."""
        for extra in ({}, {"since": 0}):
            self.chat.send(self.out, type="join", room="team", **extra)
            self.assertEqual(self.out.last("error")["code"], "forbidden")
        self.assertEqual(self.out.of_type("joined"), [])
        joined = self.chat.join(self.root, "team")
        self.assertEqual([m["text"] for m in joined["history"]], ["secret plan"])
        members = self.call("GET", "/rooms/team/members", self.olive)[1]["members"]
        self.assertIn("root", [m["user"] for m in members])

    def test_sessions_and_unread_only_for_members(self):
        """/api/sessions lists the private room with its unread count for members; an outsider has none."""
        sessions = self.call("GET", "/sessions", self.mem)[1]["sessions"]
        self.assertEqual([(s["room"], s["unread"]) for s in sessions], [("team", 1)])
        self.assertEqual(self.call("GET", "/sessions", self.out)[1], {"sessions": []})


class MemberTests(RoomsTestCase):

    def test_members_list_roles(self):
        """GET members: each member with role, joined_at and online, by joining time."""
        status, body = self.call("GET", "/rooms/team/members", self.mem)
        self.assertEqual(status, 200)
        self.assertEqual([(m["user"], m["role"], m["online"]) for m in body["members"]],
                         [("olive", "owner", True), ("mo", "moderator", True), ("mem", "member", True)])

    def test_invite_matrix(self):
        """Owner, moderator and admin invite (201; 200 when already a member); a member 403; an outsider 404;
        only the owner or admin makes moderators; an unknown user 404."""
        extra = [self.chat.connect(n) for n in ("u1", "u2", "u3")]
        self.assertEqual(self.code("POST", "/rooms/team/members", self.olive, {"user": "u1"}), 201)
        self.assertEqual(self.code("POST", "/rooms/team/members", self.mo, {"user": "u2"}), 201)
        self.assertEqual(self.code("POST", "/rooms/team/members", self.root, {"user": "u3", "role": "moderator"}), 201)
        self.assertEqual(self.code("POST", "/rooms/team/members", self.olive, {"user": "u1"}), 200)
        self.assertEqual(self.code("POST", "/rooms/team/members", self.mem, {"user": "out"}), 403)
        self.assertEqual(self.code("POST", "/rooms/team/members", self.out, {"user": "out"}), 404)
        self.assertEqual(self.code("POST", "/rooms/team/members", self.mo, {"user": "out", "role": "moderator"}), 403)
        self.assertEqual(self.code("POST", "/rooms/team/members", self.olive, {"user": "ghost"}), 404)
        self.assertEqual(self.code("POST", "/rooms/team/members", self.olive, {"user": "out", "role": "owner"}), 400)
        invited = extra[0].last("invited")
        self.assertEqual((invited["by"], invited["room"]["name"], invited["room"]["visibility"]),
                         ("olive", "team", "private"))
        self.assertEqual([(f["user"], f["event"], f["role"]) for f in self.mem.of_type("member")],
                         [("u1", "added", "member"), ("u2", "added", "member"), ("u3", "added", "moderator")])
        self.assertEqual(self.chat.join(extra[0], "team")["room"], "team")

    def test_role_changes(self):
        """Only the owner or admin changes roles (moderator 403, member 403, outsider 404); making someone
        owner makes the old owner a moderator; the owner cannot just drop their role."""
        self.assertEqual(self.code("PATCH", "/rooms/team/members/mem", self.mo, {"role": "moderator"}), 403)
        self.assertEqual(self.code("PATCH", "/rooms/team/members/mem", self.mem, {"role": "moderator"}), 403)
        self.assertEqual(self.code("PATCH", "/rooms/team/members/mem", self.out, {"role": "moderator"}), 404)
        self.assertEqual(self.code("PATCH", "/rooms/team/members/olive", self.olive, {"role": "member"}), 400)
        self.assertEqual(self.code("PATCH", "/rooms/team/members/out", self.olive, {"role": "member"}), 404)
        status, member = self.call("PATCH", "/rooms/team/members/mem", self.olive, {"role": "moderator"})
        self.assertEqual((status, member["user"], member["role"]), (200, "mem", "moderator"))
        status, member = self.call("PATCH", "/rooms/team/members/mo", self.root, {"role": "owner"})
        self.assertEqual((status, member["role"]), (200, "owner"))
        roles = {m["user"]: m["role"] for m in self.call("GET", "/rooms/team/members", self.mem)[1]["members"]}
        self.assertEqual(roles, {"olive": "moderator", "mo": "owner", "mem": "moderator"})
        self.assertEqual(self.call("GET", "/rooms/team", self.mem)[1]["owner"], "mo")
        self.assertIn(("olive", "role", "moderator"), [(f["user"], f["event"], f["role"])
                                                       for f in self.mem.of_type("member")])

    def test_removal_stops_live_frames_at_once(self):
        """A moderator removes a member: 204; the member's sockets get left with reason removed, no further
        message of the room, and 404 on its history; the others get member removed."""
        second = self.chat.connect("mem")
        self.chat.join(second, "team")
        self.assertEqual(self.code("DELETE", "/rooms/team/members/mem", self.mo), 204)
        for conn in (self.mem, second):
            self.assertEqual(conn.last("left"), {"type": "left", "room": "team", "reason": "removed"})
        self.assertEqual(self.olive.last("member"), {"type": "member", "room": "team", "user": "mem",
                                                     "event": "removed", "role": "member"})
        self.chat.say(self.olive, "after removal", room="team")
        self.assertNotIn("after removal", [f.get("text") for f in self.mem.sent + second.sent])
        self.assertEqual(self.code("GET", "/rooms/team/messages", self.mem), 404)
        self.chat.send(self.mem, type="join", room="team")
        self.assertEqual(self.mem.last("error")["code"], "forbidden")

    def test_removal_matrix(self):
        """Nobody removes the owner (403); a member removes nobody else (403); an outsider 404; a non-member
        404; anyone leaves by removing themselves (204, left without reason)."""
        self.assertEqual(self.code("DELETE", "/rooms/team/members/olive", self.mo), 403)
        self.assertEqual(self.code("DELETE", "/rooms/team/members/olive", self.root), 403)
        self.assertEqual(self.code("DELETE", "/rooms/team/members/mo", self.mem), 403)
        self.assertEqual(self.code("DELETE", "/rooms/team/members/mem", self.out), 404)
        self.assertEqual(self.code("DELETE", "/rooms/team/members/out", self.olive), 404)
        self.assertEqual(self.code("DELETE", "/rooms/team/members/mem", self.mem), 204)
        self.assertEqual(self.mem.last("left"), {"type": "left", "room": "team"})

    def test_owner_leaving_hands_the_room_over(self):
        """The owner leaves: the moderator who joined earliest owns it; when only members are left, the
        earliest member; the last one out leaves it without owner, and the next to join owns it."""
        self.chat.send(self.olive, type="leave", room="team")
        self.assertEqual(self.call("GET", "/rooms/team", self.mem)[1]["owner"], "mo")
        self.assertEqual(self.code("DELETE", "/rooms/team/members/mo", self.mo), 204)
        self.assertEqual(self.call("GET", "/rooms/team", self.mem)[1]["owner"], "mem")
        self.chat.send(self.mem, type="leave", room="team")
        room = self.call("GET", "/rooms/team", self.root)[1]
        self.assertEqual((room["owner"], room["members"]), (None, 0))
        self.chat.join(self.root, "team")
        self.assertEqual(self.call("GET", "/rooms/team", self.root)[1]["owner"], "root")


class ChangeRoomTests(RoomsTestCase):

    def test_patch_matrix_and_room_frame(self):
        """Owner and admin change topic and visibility (200, a room frame to the members); moderator and member
        403; outsider 404; an empty or bad body 400."""
        self.assertEqual(self.code("PATCH", "/rooms/team", self.mo, {"topic": "x"}), 403)
        self.assertEqual(self.code("PATCH", "/rooms/team", self.mem, {"topic": "x"}), 403)
        self.assertEqual(self.code("PATCH", "/rooms/team", self.out, {"topic": "x"}), 404)
        self.assertEqual(self.code("PATCH", "/rooms/team", self.olive, {}), 400)
        self.assertEqual(self.code("PATCH", "/rooms/team", self.olive, {"visibility": "direct"}), 400)
        status, room = self.call("PATCH", "/rooms/team", self.olive, {"topic": "launch"})
        self.assertEqual((status, room["topic"]), (200, "launch"))
        self.assertEqual(self.mem.last("room")["room"]["topic"], "launch")
        self.assertEqual(self.code("PATCH", "/rooms/team", self.root, {"topic": "by admin"}), 200)

    def test_visibility_opens_and_closes(self):
        """Made public, the room is open to everyone (history, join); made private again, it keeps its members
        (the outsider who joined meanwhile included) and is closed to the rest."""
        self.call("PATCH", "/rooms/team", self.olive, {"visibility": "public"})
        self.assertEqual(self.code("GET", "/rooms/team/messages", self.out), 200)
        self.chat.join(self.out, "team")
        self.call("PATCH", "/rooms/team", self.olive, {"visibility": "private"})
        self.assertEqual(self.code("GET", "/rooms/team/messages", self.out), 200)
        self.assertEqual(self.code("GET", "/rooms/team/messages", self.chat.connect("late")), 404)


class ModerationTests(RoomsTestCase):

    def test_moderators_delete_any_message_members_only_their_own(self):
        """The moderator deletes the owner's message (204, deleted frame); a member may not (403); an outsider
        gets 404 as for the room."""
        self.chat.say(self.mem, "mine", room="team")
        self.assertEqual(self.code("DELETE", "/rooms/team/messages/1", self.mem), 403)
        self.assertEqual(self.code("DELETE", "/rooms/team/messages/1", self.out), 404)
        self.assertEqual(self.code("PATCH", "/rooms/team/messages/2", self.out, {"text": "x"}), 404)
        self.assertEqual(self.code("DELETE", "/rooms/team/messages/1", self.mo), 204)
        self.assertEqual(self.mem.last("deleted"), {"type": "deleted", "room": "team", "seq": 1})
        self.assertEqual(self.code("DELETE", "/rooms/team/messages/2", self.mem), 204)


class DirectRoomTests(RoomsTestCase):

    def test_same_set_same_room_from_any_member(self):
        """POST /api/dms: 201 and a direct room named dm-<24 hex>; the same set from another member, in any
        order, is 200 and the same room; every member but the caller gets invited; all have it in sessions."""
        status, room = self.call("POST", "/dms", self.out, {"users": ["mem", "mo"]})
        self.assertEqual((status, room["visibility"], room["owner"], room["members"]), (201, "direct", None, 3))
        self.assertRegex(room["name"], r"^dm-[0-9a-f]{24}$")
        status, again = self.call("POST", "/dms", self.mo, {"users": ["out", "mem", "mo"]})
        self.assertEqual((status, again["name"]), (200, room["name"]))
        for conn in (self.mem, self.mo):
            self.assertEqual(conn.last("invited")["by"], "out")
            self.assertIn(room["name"], [s["room"] for s in self.call("GET", "/sessions", conn)[1]["sessions"]])
        self.assertEqual(self.out.of_type("invited"), [])

    def test_members_are_fixed_and_outsiders_see_nothing(self):
        """In a direct room nobody invites, removes, leaves or changes it (403); an outsider, admin included,
        gets 404 and forbidden on join."""
        name = self.call("POST", "/dms", self.out, {"users": ["mem"]})[1]["name"]
        self.assertEqual(self.code("POST", f"/rooms/{name}/members", self.out, {"user": "mo"}), 403)
        self.assertEqual(self.code("DELETE", f"/rooms/{name}/members/mem", self.out), 403)
        self.assertEqual(self.code("DELETE", f"/rooms/{name}/members/out", self.out), 403)
        self.assertEqual(self.code("PATCH", f"/rooms/{name}", self.out, {"topic": "x"}), 403)
        self.chat.join(self.out, name)
        self.chat.send(self.out, type="leave", room=name)
        self.assertEqual(self.out.last("error")["code"], "forbidden")
        for path in (f"/rooms/{name}", f"/rooms/{name}/messages", f"/rooms/{name}/members"):
            self.assertEqual(self.code("GET", path, self.root), 404, path)
        self.chat.send(self.root, type="join", room=name)
        self.assertEqual(self.root.last("error")["code"], "forbidden")

    def test_bad_requests(self):
        """Unknown or banned users, only oneself, more than 8 others, or not a list: 400; dm- names cannot be
        made by join."""
        self.call("POST", "/dms", self.out, {"users": ["mem"]})
        self.successResultOf(self.store.update_user(self.mo.user_id, {"banned": True}))
        for users in (["ghost"], ["mo"], ["out"], [f"x{i}" for i in range(9)], "mem", [], [1]):
            self.assertEqual(self.code("POST", "/dms", self.out, {"users": users}), 400, users)
        self.chat.send(self.out, type="join", room="dm-0123456789abcdef01234567")
        self.assertEqual(self.out.last("error")["code"], "forbidden")
