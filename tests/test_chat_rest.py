"""The rooms' REST side on the chat harness: ``/api/rooms``, their history and read positions, and
``/api/sessions`` (SPEC.md: REST API, Details: History, Unread), through the real Klein routes with StubTreq.
"""

from __future__ import annotations

import json

from treq.testing import StubTreq

from chatd.chat.editing import MessageEditor
from chatd.web.api.rooms import RoomRoutes
from tests.chatharness import ChatTestCase


class RoomRoutesTestCase(ChatTestCase):
    """Alice and Bob in the lobby (7 messages from Alice), Carol signed in but not a member, and a client
    for the routes."""

    def setUp(self):
        super().setUp()
        editor = MessageEditor(self.store, self.chat.rooms, self.chat.events, self.clock, self.chat.access)
        self.http = StubTreq(RoomRoutes(self.chat.accounts, self.chat.history, editor, self.chat.access,
                                        self.chat.catalog, self.chat.members, self.chat.direct).app.resource())
        self.alice = self.chat.connect("alice")
        self.bob = self.chat.connect("bob")
        self.carol = self.chat.connect("carol")
        self.chat.join(self.alice)
        self.chat.join(self.bob)
        for i in range(7):
            self.chat.say(self.alice, f"m{i}")

    def get(self, path: str, conn=None) -> tuple[int, dict]:
        """GET ``path`` with ``conn``'s token (none without one): the status and the JSON body."""
        headers = {"Authorization": f"Bearer {conn.token}"} if conn is not None else {}
        response = self.successResultOf(self.http.get("http://chatd.test" + path, headers=headers))
        body = self.successResultOf(response.content())
        return response.code, json.loads(body)


class HistoryPageTests(RoomRoutesTestCase):
    def test_pages_go_back_to_the_start_oldest_first(self):
        """``/api/rooms/{room}/messages`` pages back with ``limit`` and ``before``: each page oldest first,
        ``next_before`` null once the first message is in it."""
        seen, before = [], None
        while True:
            status, page = self.get("/rooms/lobby/messages?limit=3" + (f"&before={before}" if before else ""), self.bob)
            self.assertEqual(status, 200)
            seen = [m["seq"] for m in page["messages"]] + seen
            before = page["next_before"]
            if before is None:
                break
        self.assertEqual(seen, list(range(1, 8)))

    def test_default_is_the_latest_50(self):
        """Without ``limit`` a page is the latest 50 (here all 7), with the messages' SPEC.md fields."""
        status, page = self.get("/rooms/lobby/messages", self.bob)
        self.assertEqual((status, page["next_before"]), (200, None))
        self.assertEqual([m["text"] for m in page["messages"]], [f"m{i}" for i in range(7)])
        self.assertEqual(page["messages"][0]["id"], "lobby:1")

    def test_unknown_room_is_empty_and_bad_parameters_are_refused(self):
        """An unknown room has an empty history; a ``limit`` outside 1-200 or a bad ``before`` is 400; a
        malformed room name is 404; no token is 401."""
        self.assertEqual(self.get("/rooms/nowhere/messages", self.bob), (200, {"messages": [], "next_before": None}))
        for query in ("limit=500", "limit=0", "limit=x", "before=0", "before=-1"):
            status, body = self.get(f"/rooms/lobby/messages?{query}", self.bob)
            self.assertEqual((status, body["error"]["code"]), (400, "invalid_request"), query)
        self.assertEqual(self.get("/rooms/a%20b/messages", self.bob)[0], 404)
        self.assertEqual(self.get("/rooms/lobby/messages")[0], 401)


class SessionTests(RoomRoutesTestCase):
    def test_session_history_is_for_members_only(self):
        """``/api/sessions/{room}/messages`` serves a member the room's history and is 404 for anyone else."""
        status, page = self.get("/sessions/lobby/messages?limit=2", self.alice)
        self.assertEqual((status, [m["text"] for m in page["messages"]]), (200, ["m5", "m6"]))
        status, body = self.get("/sessions/lobby/messages", self.carol)
        self.assertEqual((status, body["error"]["code"]), (404, "not_found"))

    def test_sessions_list_the_rooms_joined_with_unread(self):
        """``/api/sessions`` lists the rooms the user is a member of, with the unread count and the time of
        the last message; a user in no room has none."""
        self.chat.join(self.carol)
        last = self.chat.say(self.alice, "new for carol")
        status, body = self.get("/sessions", self.carol)
        [lobby] = body["sessions"]
        self.assertEqual((status, lobby["room"], lobby["unread"]), (200, "lobby", 1))
        self.assertEqual(lobby["last_message_at"], last["ts"])
        self.assertEqual(self.get("/sessions", self.chat.connect("dave")), (200, {"sessions": []}))

    def test_rooms_list_members_and_online(self):
        """``/api/rooms`` lists each room with a member or a message, its member count and members online."""
        self.chat.closed(self.bob)
        status, body = self.get("/rooms", self.alice)
        [lobby] = body["rooms"]
        self.assertEqual((status, lobby["name"], lobby["members"], lobby["online"]), (200, "lobby", 2, 1))


class ReadsTests(RoomRoutesTestCase):
    def test_read_positions_can_be_read_back(self):
        """``/api/rooms/{room}/reads`` lists how far members have read ("seen by" after a reload), right after
        the receipt, before it is written to the store; an unknown room has none."""
        self.chat.send(self.bob, type="read", room="lobby", seq=2)
        self.assertEqual(self.get("/rooms/lobby/reads", self.alice),
                         (200, {"reads": [{"user": "bob", "user_id": self.bob.user_id, "seq": 2}]}))
        self.assertEqual(self.get("/rooms/nowhere/reads", self.alice), (200, {"reads": []}))

    def test_malformed_rooms_are_404_and_no_token_401(self):
        """A room name that is not one (``..``, a space) is 404, as if it did not exist; no token is 401."""
        for bad in ("/rooms/%2E%2E/reads", "/rooms/a%20b/reads"):
            status, body = self.get(bad, self.alice)
            self.assertEqual((status, body["error"]["message"]), (404, "No such room."), bad)  # not a missing route
        self.assertEqual(self.get("/rooms/lobby/reads")[0], 401)
