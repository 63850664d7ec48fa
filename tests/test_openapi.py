"""The OpenAPI description (chatd/web/openapi.json): valid, served, and true to the server it describes."""

from __future__ import annotations

import time

import jwt
from openapi_spec_validator import validate
from twisted.trial.unittest import TestCase

from chatd.web.api.description import description_bytes
from tests import openapi_check as check
from tests.harness import SECRET, start_server
from tests.test_e2e_files import upload_body
from tests.test_multipart import CTYPE
from tests.wsclient import joined

MAX_UPLOAD = 64 * 1024
QUOTA = 3 * MAX_UPLOAD  # bytes per user per hour: the fourth full upload is over it


class DocumentTests(TestCase):
    def test_valid_openapi_3_1(self):
        """A maintained validator (openapi-spec-validator) accepts the document as OpenAPI 3.1."""
        doc = check.load()
        self.assertTrue(doc["openapi"].startswith("3.1"))
        validate(doc)

    def test_path_parameters_match_templates(self):
        """Every ``{name}`` of a path template is a described path parameter, and no other is."""
        self.assertEqual(check.path_parameter_problems(check.load()), [])

    def test_checks_catch_drift(self):
        """The answer check reports an undescribed status and a body whose shape drifted; a good answer passes."""
        doc = check.load()
        error = b'{"error":{"code":"not_found","message":"No such room."}}'
        seen = [("GET", "/api/rooms/{room}", 404, "application/json", error),
                ("GET", "/api/rooms/{room}", 418, "application/json", error),
                ("GET", "/api/rooms/{room}", 200, "application/json; charset=utf-8", b'{"name":"pub"}'),
                ("GET", "/api/nowhere", 200, "application/json", b"{}")]
        problems = check.answer_problems(doc, seen)
        self.assertTrue(all(p.startswith("GET /api/rooms/{room}") for p in problems[:2]), problems)
        self.assertIn("418 not described", problems[0])
        self.assertIn("'visibility' is a required property", problems[1])
        self.assertEqual(problems[-1], "GET /api/nowhere: not described")
        self.assertIn("GET /api/rooms/{room}", check.unexercised(doc, seen[:2]))

    def test_packaged_document_is_the_repository_file(self):
        """What chatd ships and serves is the file kept in the repository."""
        self.assertEqual(description_bytes(), check.DOCUMENT.read_bytes())


class ServedTests(TestCase):
    timeout = 60

    async def setUp(self):
        self.server = await start_server(self)
        self.http = self.server.client()

    async def test_routing_table_matches(self):
        """Every route the running site has is described with its methods, and nothing else is."""
        real = check.site_routes(self.server.service.site)
        described = check.described_routes(check.load())
        self.assertIn(("GET", "/api/rooms/{room}/messages"), real)  # the walk found the Klein routes
        self.assertEqual(sorted(real - described), [], "routes the description lacks")
        self.assertEqual(sorted(described - real), [], "described routes the server lacks")

    async def test_served_without_a_token_and_cacheable(self):
        """GET /api/openapi.json is the file's bytes, JSON, cacheable; If-None-Match gets 304."""
        response = await self.http.request("GET", "/api/openapi.json")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, check.DOCUMENT.read_bytes())
        self.assertTrue(response.header("content-type").startswith("application/json"))
        self.assertIn("max-age", response.header("cache-control"))
        again = await self.http.request("GET", "/api/openapi.json", headers={"If-None-Match": response.header("etag")})
        self.assertEqual((again.status, again.body), (304, b""))
        self.assertEqual((await self.http.request("POST", "/api/openapi.json")).status, 405)

    async def test_docs_page_under_the_sites_policy(self):
        """GET /api/docs is an HTML page whose only script and style are the site's own files, under its CSP."""
        page = await self.http.request("GET", "/api/docs")
        self.assertEqual(page.status, 200)
        self.assertTrue(page.header("content-type").startswith("text/html"))
        self.assertIn("script-src 'self'", page.header("content-security-policy"))
        self.assertNotIn(b"<script>", page.body)
        self.assertNotIn(b"style=", page.body)
        for asset in ("/js/apidocs.js", "/css/apidocs.css"):
            self.assertIn(asset.encode(), page.body)
            self.assertEqual((await self.http.request("GET", asset)).status, 200, asset)


class StatusTests(TestCase):
    """A real chatd driven through every route, right and wrong; each answer must be one the description allows."""

    timeout = 120
    maxDiff = None

    async def setUp(self):
        self.server = await start_server(self, max_upload=MAX_UPLOAD, upload_quota=QUOTA)
        self.rec = check.Recorder(self.server.client())

    async def test_every_answer_is_described(self):
        """Statuses and JSON bodies seen across every route match the description; every operation succeeds once."""
        await self._accounts()
        await self._users()
        await self._rooms()
        await self._history()
        await self._files()
        await self._operations()
        await self._limits()
        doc = check.load()
        self.assertEqual("\n".join(self.rec.surprises), "", "the session did not go as planned")
        self.assertEqual(check.answer_problems(doc, self.rec.seen), [])
        self.assertEqual(check.unexercised(doc, self.rec.seen), [])

    async def _accounts(self):
        call = self.rec.call
        register = "/api/auth/register"
        self.admin = (await call("POST", register, 201, body=_signup("root"))).json()
        self.alice = (await call("POST", register, 201, body=_signup("alice"))).json()
        self.bob = (await call("POST", register, 201, body=_signup("bob"))).json()
        self.carol = (await call("POST", register, 201, body=_signup("carol"))).json()
        await call("POST", register, 400, body={"username": "x"})
        await call("POST", register, 409, body=_signup("ALICE"))
        await call("POST", register, 415, raw=b"{}", content_type="text/plain")
        await call("POST", register, 413, body={**_signup("dave"), "password": "x" * 70000})
        await call("POST", "/api/auth/login", 200, body={"username": "alice", "password": "correct horse"})
        await call("POST", "/api/auth/login", 401, body={"username": "alice", "password": "wrong horse"})
        await call("POST", "/api/auth/login", 400, body={"username": "alice", "email": "a@example.com", "password": "p"})
        await call("POST", "/api/auth/refresh", 200, token=self.alice["token"])
        await call("POST", "/api/auth/refresh", 401)
        spare = (await call("POST", "/api/auth/login", 200, body={"username": "bob", "password": "correct horse"})).json()
        await call("POST", "/api/auth/logout", 204, token=spare["token"])
        await call("POST", "/api/auth/logout", 401, token=spare["token"])

    async def _users(self):
        call, admin, alice, bob = self.rec.call, self.admin["token"], self.alice["token"], self.bob["token"]
        alice_id, carol_id, nobody = self.alice["user"]["id"], self.carol["user"]["id"], "0" * 24
        await call("GET", "/api/users", 200, token=bob, query="?limit=2")
        await call("GET", "/api/users", 400, token=bob, query="?limit=0")
        await call("GET", "/api/users", 401, token="not.a.jwt")
        await call("GET", "/api/users", 401, token=_expired(self.bob))
        one = "/api/users/{user_id}"
        await call("GET", one, 200, {"user_id": alice_id}, token=bob)
        await call("GET", one, 404, {"user_id": nobody}, token=bob)
        await call("PATCH", one, 200, {"user_id": alice_id}, token=alice, body={"email": "alice2@example.com"})
        await call("PUT", one, 200, {"user_id": alice_id}, token=alice, body={"email": "alice@example.com"})
        await call("PATCH", one, 403, {"user_id": alice_id}, token=bob, body={"email": "b@example.com"})
        await call("PATCH", one, 409, {"user_id": alice_id}, token=alice, body={"username": "Bob"})
        await call("PATCH", one, 400, {"user_id": alice_id}, token=alice, body={"age": "3"})
        await call("PATCH", one, 404, {"user_id": nobody}, token=admin, body={})
        ban = "/api/users/{user_id}/ban"
        await call("POST", ban, 204, {"user_id": carol_id}, token=admin, body={"reason": "spam"})
        await call("GET", "/api/users", 403, token=self.carol["token"])
        await call("POST", "/api/auth/login", 403, body={"username": "carol", "password": "correct horse"})
        await call("POST", ban, 403, {"user_id": carol_id}, token=alice)
        await call("POST", ban, 404, {"user_id": nobody}, token=admin)
        await call("POST", ban, 400, {"user_id": carol_id}, token=admin, body={"reason": "x" * 501})
        await call("DELETE", ban, 403, {"user_id": carol_id}, token=alice)
        await call("DELETE", ban, 404, {"user_id": nobody}, token=admin)
        await call("DELETE", ban, 204, {"user_id": carol_id}, token=admin)

    async def _rooms(self):
        call, alice, bob, carol = self.rec.call, self.alice["token"], self.bob["token"], self.carol["token"]
        await call("POST", "/api/rooms", 201, token=alice, body={"name": "team", "visibility": "private"})
        await call("POST", "/api/rooms", 201, token=alice, body={"name": "pub", "visibility": "public", "topic": "hi"})
        await call("POST", "/api/rooms", 409, token=bob, body={"name": "team", "visibility": "public"})
        await call("POST", "/api/rooms", 400, token=bob, body={"name": "x", "visibility": "secret"})
        await call("GET", "/api/rooms", 200, token=alice)
        room, team, pub = "/api/rooms/{room}", {"room": "team"}, {"room": "pub"}
        await call("GET", room, 200, team, token=alice)
        await call("GET", room, 404, team, token=bob)
        await call("PATCH", room, 200, team, token=alice, body={"topic": "launch"})
        await call("PATCH", room, 400, team, token=alice, body={})
        await call("PATCH", room, 404, team, token=bob, body={"topic": "mine"})
        members, member = "/api/rooms/{room}/members", "/api/rooms/{room}/members/{user}"
        await call("POST", members, 201, team, token=alice, body={"user": "bob"})
        await call("POST", members, 200, team, token=alice, body={"user": "bob"})
        await call("POST", members, 404, team, token=alice, body={"user": "nobody"})
        await call("POST", members, 403, team, token=bob, body={"user": "carol"})
        await call("GET", members, 200, team, token=bob)
        await call("GET", members, 404, team, token=carol)
        await call("PATCH", member, 200, {"room": "team", "user": "bob"}, token=alice, body={"role": "moderator"})
        await call("PATCH", member, 403, {"room": "team", "user": "alice"}, token=bob, body={"role": "member"})
        await call("PATCH", member, 404, {"room": "team", "user": "carol"}, token=alice, body={"role": "member"})
        await call("PATCH", member, 400, {"room": "team", "user": "alice"}, token=alice, body={"role": "member"})
        await call("DELETE", member, 403, {"room": "team", "user": "alice"}, token=bob)
        await call("DELETE", member, 404, {"room": "team", "user": "carol"}, token=alice)
        await call("POST", members, 201, pub, token=alice, body={"user": "bob"})
        await call("POST", members, 201, pub, token=alice, body={"user": "carol"})
        await call("DELETE", member, 204, {"room": "pub", "user": "carol"}, token=alice)
        await call("PATCH", room, 403, pub, token=bob, body={"topic": "mine"})
        await call("POST", "/api/dms", 201, token=alice, body={"users": ["bob"]})
        await call("POST", "/api/dms", 200, token=bob, body={"users": ["alice"]})
        await call("POST", "/api/dms", 400, token=bob, body={"users": ["nobody"]})

    async def _history(self):
        call, alice, bob, carol = self.rec.call, self.alice["token"], self.bob["token"], self.carol["token"]
        ws = await joined(self.server.url, alice, "pub", test=self)
        for text in ("hello", "second", "third"):
            ws.send({"type": "message", "room": "pub", "text": text})
            await ws.next("ack")
        ws.send({"type": "message", "room": "pub", "text": "a reply", "reply_to": 1})
        await ws.next("ack")
        ws.send({"type": "read", "room": "pub", "seq": 4})
        team_ws = await joined(self.server.url, alice, "team", test=self)
        team_ws.send({"type": "message", "room": "team", "text": "secret plans"})
        await team_ws.next("ack")
        pub, team = {"room": "pub"}, {"room": "team"}
        messages = "/api/rooms/{room}/messages"
        await call("GET", messages, 200, pub, token=bob, query="?limit=2")
        await call("GET", messages, 400, pub, token=bob, query="?limit=0")
        await call("GET", messages, 404, team, token=carol)
        await call("GET", messages, 404, {"room": "a b"}, token=bob)
        await call("GET", "/api/rooms/{room}/reads", 200, pub, token=bob)
        await call("GET", "/api/rooms/{room}/reads", 404, team, token=carol)
        message = "/api/rooms/{room}/messages/{seq}"
        await call("PATCH", message, 200, {"room": "pub", "seq": 2}, token=alice, body={"text": "second, edited"})
        await call("PATCH", message, 403, {"room": "pub", "seq": 2}, token=bob, body={"text": "mine now"})
        await call("PATCH", message, 404, {"room": "pub", "seq": 99}, token=alice, body={"text": "nothing"})
        await call("PATCH", message, 400, {"room": "pub", "seq": 2}, token=alice, body={"text": ""})
        await call("DELETE", message, 403, {"room": "pub", "seq": 3}, token=bob)
        await call("DELETE", message, 204, {"room": "pub", "seq": 3}, token=alice)
        await call("DELETE", message, 404, {"room": "pub", "seq": 3}, token=alice)
        thread = "/api/rooms/{room}/messages/{seq}/thread"
        await call("GET", thread, 200, {"room": "pub", "seq": 1}, token=bob)
        await call("GET", thread, 400, {"room": "pub", "seq": 1}, token=bob, query="?limit=0")
        await call("GET", thread, 404, {"room": "pub", "seq": 99}, token=bob)
        reaction = "/api/rooms/{room}/messages/{seq}/reactions/{emoji}"
        await call("PUT", reaction, 204, {"room": "pub", "seq": 1, "emoji": "👍"}, token=alice)
        await call("DELETE", reaction, 204, {"room": "pub", "seq": 1, "emoji": "👍"}, token=alice)
        await call("PUT", reaction, 400, {"room": "pub", "seq": 1, "emoji": "a b"}, token=alice)
        await call("DELETE", reaction, 400, {"room": "pub", "seq": 1, "emoji": "a b"}, token=alice)
        await call("PUT", reaction, 404, {"room": "pub", "seq": 3, "emoji": "x"}, token=alice)
        await call("PUT", reaction, 403, {"room": "pub", "seq": 1, "emoji": "x"}, token=carol)
        for number in range(20):
            await call("PUT", reaction, 204, {"room": "pub", "seq": 2, "emoji": f"e{number}"}, token=alice)
        await call("PUT", reaction, 413, {"room": "pub", "seq": 2, "emoji": "e20"}, token=alice)
        await call("GET", "/api/sessions", 200, token=alice)
        own = "/api/sessions/{room}/messages"
        await call("GET", own, 200, pub, token=alice)
        await call("GET", own, 404, pub, token=carol)
        await call("GET", own, 400, pub, token=alice, query="?before=x")
        await call("GET", "/api/search", 200, token=bob, query="?q=sec")
        await call("GET", "/api/search", 400, token=bob)
        await call("GET", "/api/search", 404, token=carol, query="?q=secret&room=team")

    async def _files(self):
        call, alice, bob, carol = self.rec.call, self.alice["token"], self.bob["token"], self.carol["token"]
        files, pub, team = "/api/rooms/{room}/files", {"room": "pub"}, {"room": "team"}

        def upload(size: int) -> dict:
            return {"raw": upload_body("notes.txt", b"n" * size), "content_type": CTYPE}

        stored = await call("POST", files, 201, pub, token=alice, **upload(100))
        await call("POST", files, 400, pub, token=alice, raw=b"--x--\r\n", content_type=CTYPE)
        await call("POST", files, 403, pub, token=carol, **upload(100))
        await call("POST", files, 404, team, token=carol, **upload(100))
        await call("POST", files, 413, pub, token=alice, **upload(MAX_UPLOAD + 1))
        await call("POST", files, 415, pub, token=alice, body={"file": "x"})
        await call("POST", files, 401, pub, **upload(100))
        one = "/api/files/{file_id}"
        file_id = stored.json()["file"]["id"]
        await call("GET", one, 200, {"file_id": file_id}, token=bob)
        await call("GET", one, 403, {"file_id": file_id}, token=carol)
        await call("GET", one, 404, {"file_id": "0" * 24}, token=bob)
        await call("PATCH", "/api/rooms/{room}/messages/{seq}", 400, {"room": "pub", "seq": 5}, token=alice,
                   body={"text": "a file's text"})
        for _ in range(3):
            await call("POST", files, 201, pub, token=bob, **upload(MAX_UPLOAD - 1024))
        await call("POST", files, 429, pub, token=bob, **upload(MAX_UPLOAD - 1024))

    async def _operations(self):
        call = self.rec.call
        await call("GET", "/api/openapi.json", 200)
        await call("GET", "/api/docs", 200)
        await call("GET", "/healthz", 200)
        await call("GET", "/metrics", 200)

    async def _limits(self):
        """The account deletions and rate limits last: they end sessions and use up budgets."""
        call, admin, alice, bob = self.rec.call, self.admin["token"], self.alice["token"], self.bob["token"]
        one = "/api/users/{user_id}"
        await call("DELETE", one, 403, {"user_id": self.admin["user"]["id"]}, token=alice)
        await call("DELETE", one, 404, {"user_id": "0" * 24}, token=admin)
        await call("DELETE", one, 204, {"user_id": self.bob["user"]["id"]}, token=bob)
        for number in range(30):  # the account-change budget: bursts of 20 changes
            if (await call("PATCH", one, 200, {"user_id": self.alice["user"]["id"]}, token=alice,
                           body={"email": f"alice{number}@example.com"})).status == 429:
                break
        for _ in range(60):  # the auth rate per address: bursts of 20
            if (await call("POST", "/api/auth/login", 401, body={"username": "alice", "password": "wrong horse"})).status == 429:
                break
        self.rec.surprises = [s for s in self.rec.surprises if ": 429 for " not in s]
        self.assertIn(429, [status for m, p, status, _, _ in self.rec.seen if p == one and m == "PATCH"])
        self.assertIn(429, [status for m, p, status, _, _ in self.rec.seen if p == "/api/auth/login"])


def _signup(name: str) -> dict:
    return {"username": name, "email": f"{name}@example.com", "password": "correct horse"}


def _expired(session: dict) -> str:
    claims = jwt.decode(session["token"], SECRET, algorithms=["HS256"])
    now = time.time()
    return jwt.encode({**claims, "iat": int(now) - 7200, "exp": int(now) - 3600}, SECRET, algorithm="HS256")


