"""Issue 9's findings against a running chatd on the real store: what one user could do to the others."""

from __future__ import annotations

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from tests.harness import start_server
from tests.wsclient import joined


class AbuseTests(TestCase):
    timeout = 120

    async def setUp(self):
        self.server = await start_server(self)
        self.http = self.server.client()
        self.root = await self.http.register("root")  # the first user: admin
        self.alice = await self.http.register("alice")
        self.bob = await self.http.register("bob")

    def _user(self, session) -> str:
        return f"/api/users/{session['user']['id']}"

    async def test_a_taken_name_with_a_password_change_is_409_and_changes_nothing(self):
        """Finding 1: PATCH with a new password and a taken username was a 500 on the embedded store
        (after a wasted hash); it is a 409, nothing changed, and the token still works."""
        response = await self.http.request("PATCH", self._user(self.bob),
                                           {"username": "alice", "password": "a new password"}, token=self.bob["token"])
        self.assertEqual((response.status, response.code), (409, "conflict"))
        self.assertEqual(response.json()["error"]["fields"], {"username": "already taken"})
        me = await self.http.request("GET", self._user(self.bob), token=self.bob["token"])
        self.assertEqual((me.status, me.json()["username"]), (200, "bob"))
        login = await self.http.request("POST", "/api/auth/login", {"username": "bob", "password": "correct horse"})
        self.assertEqual(login.status, 200)

    async def test_two_admins_demoting_themselves_at_once_leave_one(self):
        """Finding 8: two admins giving up the role in the same instant (ten times over) never both
        succeed: the site always keeps an admin."""
        for round in range(10):
            second = await self.http.register(f"admin{round}")
            promoted = await self.http.request("PATCH", self._user(second), {"role": "admin"}, token=self.root["token"])
            self.assertEqual(promoted.status, 200)
            answers = await defer.gatherResults([
                defer.ensureDeferred(self.http.request("PATCH", self._user(self.root), {"role": "user"}, token=self.root["token"])),
                defer.ensureDeferred(self.http.request("PATCH", self._user(second), {"role": "user"}, token=second["token"])),
            ])
            self.assertEqual(sorted(answer.status for answer in answers), [200, 403], answers)
            users = (await self.http.request("GET", "/api/users?limit=200", token=self.alice["token"])).json()["users"]
            admins = [user for user in users if user["role"] == "admin"]
            self.assertEqual(len(admins), 1)
            if admins[0]["id"] != self.root["user"]["id"]:
                await self.http.request("PATCH", self._user(self.root), {"role": "admin"}, token=second["token"])
                await self.http.request("PATCH", self._user(second), {"role": "user"}, token=second["token"])

    async def test_an_edit_racing_a_delete_leaves_no_text_in_the_tombstone(self):
        """Finding 10: an edit and a delete of the same message sent together (30 times): the stored
        message is either deleted without text, or edited; never a tombstone holding the new text."""
        a = await joined(self.server.url, self.alice["token"], test=self)
        for n in range(30):
            a.send({"type": "message", "room": "lobby", "text": f"original {n}"})
            seq = (await a.next("ack"))["seq"]
            path = f"/api/rooms/lobby/messages/{seq}"
            await defer.gatherResults([
                defer.ensureDeferred(self.http.request("PATCH", path, {"text": f"edited {n}"}, token=self.alice["token"])),
                defer.ensureDeferred(self.http.request("DELETE", path, token=self.alice["token"])),
            ])
        stored = await self.server.service.store.get_messages("lobby", list(range(1, 31)))
        self.assertEqual(len(stored), 30)
        for message in stored:  # in the store itself, not only as the API shows it
            self.assertTrue(message.deleted, message)
            self.assertIsNone(message.text, message)
            self.assertIsNone(message.edited_at, message)

    async def test_a_renamed_users_socket_and_messages_never_pass_for_the_names_next_holder(self):
        """Finding 2: bob renames himself to robert with a socket open; a newcomer registers "bob". The
        open socket now posts as robert, bob's earlier messages show robert, and nothing of his carries
        the newcomer's name or id; the newcomer's own messages carry the newcomer's id."""
        b = await joined(self.server.url, self.bob["token"], test=self)
        b.send({"type": "message", "room": "lobby", "text": "before the rename"})
        await b.next("message")
        await b.next("ack")
        renamed = await self.http.request("PATCH", self._user(self.bob), {"username": "robert"}, token=self.bob["token"])
        self.assertEqual(renamed.status, 200)
        newcomer = await self.http.register("bob", email="newbob@example.com")
        b.send({"type": "message", "room": "lobby", "text": "after the rename"})
        after = await b.next("message")
        self.assertEqual((after["user"], after["user_id"]), ("robert", self.bob["user"]["id"]))
        n = await joined(self.server.url, newcomer["token"], test=self)
        n.send({"type": "message", "room": "lobby", "text": "I am the new bob"})
        mine = await n.next("message")
        self.assertEqual((mine["user"], mine["user_id"]), ("bob", newcomer["user"]["id"]))
        page = await self.http.request("GET", "/api/rooms/lobby/messages", token=self.alice["token"])
        authors = [(m["text"], m["user"], m["user_id"]) for m in page.json()["messages"]]
        self.assertEqual(authors, [
            ("before the rename", "robert", self.bob["user"]["id"]),
            ("after the rename", "robert", self.bob["user"]["id"]),
            ("I am the new bob", "bob", newcomer["user"]["id"]),
        ])

    async def test_a_deleted_users_messages_show_as_deleted(self):
        """Finding 2: after a user is deleted, their messages show "[deleted]", and whoever registers
        their old name is not shown as their author."""
        b = await joined(self.server.url, self.bob["token"], test=self)
        b.send({"type": "message", "room": "lobby", "text": "soon gone"})
        await b.next("ack")
        deleted = await self.http.request("DELETE", self._user(self.bob), token=self.bob["token"])
        self.assertEqual(deleted.status, 204)
        await self.http.register("bob", email="another@example.com")
        page = await self.http.request("GET", "/api/rooms/lobby/messages", token=self.alice["token"])
        self.assertEqual([(m["text"], m["user"]) for m in page.json()["messages"]], [("soon gone", "[deleted]")])

    async def test_lone_surrogates_and_nested_json_are_400(self):
        """Finding 11: a lone surrogate in a registration password or email, or in a login email, and
        a 20,000-deep nested body are 400, never a 500 with a traceback."""
        bodies = [
            b'{"username": "carol", "email": "carol@example.com", "password": "abcdefgh\\ud800"}',
            b'{"username": "carol", "email": "car\\udc00ol@example.com", "password": "abcdefgh"}',
        ]
        for raw in bodies:
            response = await self.http.request("POST", "/api/auth/register", raw=raw)
            self.assertEqual((response.status, response.code), (400, "invalid_request"), raw)
        login = await self.http.request("POST", "/api/auth/login", raw=b'{"email": "a\\ud800@example.com", "password": "x"}')
        self.assertEqual((login.status, login.code), (400, "invalid_request"))
        deep = await self.http.request("POST", "/api/auth/login", raw=b"[" * 20000 + b"]" * 20000)
        self.assertEqual((deep.status, deep.code), (400, "invalid_request"))
        self.assertEqual(self.flushLoggedErrors(), [])


class CapTests(TestCase):
    """Finding 5 through a running chatd: the socket caps refuse with 429 and count in /metrics."""

    timeout = 60

    async def test_sockets_per_user_and_per_address(self):
        """With 3 sockets a user, a fourth handshake is 429 (another user still connects); closing one
        makes room; past 5 sockets from the address, any user is refused; each refusal is a metric."""
        from tests.wsclient import connect, handshake_status

        server = await start_server(self, max_sockets_per_user=3, max_sockets_per_address=5)
        http = server.client()
        alice = await http.register("alice")
        bob = await http.register("bob")
        sockets = [await connect(server.url, alice["token"], test=self) for _ in range(3)]
        self.assertEqual(await handshake_status(server.url, alice["token"]), 429)
        await connect(server.url, bob["token"], test=self)
        await sockets[0].close()
        await connect(server.url, alice["token"], test=self)
        await connect(server.url, bob["token"], test=self)  # the address's fifth
        self.assertEqual(await handshake_status(server.url, bob["token"]), 429)
        metrics = (await http.request("GET", "/metrics")).body.decode()
        self.assertIn('chatd_limit_refusals_total{limit="sockets_per_user"} 1.0', metrics)
        self.assertIn('chatd_limit_refusals_total{limit="sockets_per_address"} 1.0', metrics)

    async def test_handshake_rate_per_address(self):
        """A burst of handshakes past the rate is refused with 429 and Retry-After, then allowed again."""
        from chatd.ratelimit import Rate
        from tests.wsclient import handshake_status

        server = await start_server(self, handshake_rate=Rate(1, 3))
        statuses = [await handshake_status(server.url, "not-a-token") for _ in range(4)]
        self.assertEqual(statuses, [401, 401, 401, 429])
