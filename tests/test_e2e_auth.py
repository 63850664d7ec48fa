"""Registration, login, refresh and logout through a running chatd (real sockets, real store)."""

from __future__ import annotations

import base64
import json
import time

import jwt
from twisted.trial.unittest import TestCase

from chatd.ratelimit import Rate
from tests.harness import SECRET, start_server


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


class AuthTests(TestCase):
    timeout = 60

    async def setUp(self):
        self.server = await start_server(self)
        self.http = self.server.client()

    async def test_register_returns_user_token_and_expiry(self):
        """Registering answers 201 with the User (no password hash), a token and its expiry."""
        response = await self.http.request("POST", "/api/auth/register",
                                           {"username": "alice", "email": "Alice@Example.com", "password": "correct horse"})
        self.assertEqual(response.status, 201)
        body = response.json()
        self.assertEqual(set(body), {"user", "token", "expires_at"})
        self.assertEqual(set(body["user"]), {"id", "username", "email", "role", "created_at", "online"})
        self.assertEqual(body["user"]["username"], "alice")
        self.assertNotIn(b"password", response.body)
        self.assertNotIn(b"$2b$", response.body)
        self.assertTrue(body["expires_at"].endswith("Z"))
        claims = jwt.decode(body["token"], SECRET, algorithms=["HS256"])
        self.assertEqual(set(claims), {"sub", "username", "role", "iat", "exp", "jti"})
        self.assertGreaterEqual(claims["exp"] - claims["iat"], 3600)  # the full ttl, rounded up to a second
        self.assertLess(claims["exp"] - claims["iat"], 3601)

    async def test_first_user_is_admin_and_later_ones_are_not(self):
        """The first account ever registered is admin; the next is a user."""
        first = await self.http.register("first")
        second = await self.http.register("second")
        self.assertEqual(first["user"]["role"], "admin")
        self.assertEqual(second["user"]["role"], "user")

    async def test_duplicate_username_or_email_is_conflict_case_insensitively(self):
        """A username or email taken in any letter case gives 409 naming the field."""
        await self.http.register("alice", email="alice@example.com")
        by_name = await self.http.request("POST", "/api/auth/register",
                                          {"username": "ALICE", "email": "other@example.com", "password": "correct horse"})
        by_email = await self.http.request("POST", "/api/auth/register",
                                           {"username": "alice2", "email": "ALICE@example.COM", "password": "correct horse"})
        self.assertEqual((by_name.status, by_name.code, by_name.json()["error"]["fields"]), (409, "conflict", {"username": "already taken"}))
        self.assertEqual((by_email.status, by_email.json()["error"]["fields"]), (409, {"email": "already taken"}))

    async def test_invalid_registration_names_each_field(self):
        """Bad username, email and password are all reported at once in `fields`."""
        response = await self.http.request("POST", "/api/auth/register",
                                           {"username": "a!", "email": "not-an-email", "password": "short"})
        self.assertEqual(response.status, 400)
        self.assertEqual(response.code, "invalid_request")
        self.assertEqual(set(response.json()["error"]["fields"]), {"username", "email", "password"})

    async def test_nosql_injection_bodies_are_400_never_queries(self):
        """Operator objects, numbers, null, lists and booleans in any field are refused with 400."""
        await self.http.register("victim", password="victim password")
        attacks = [
            {"username": {"$ne": None}, "password": {"$ne": None}},
            {"username": "victim", "password": {"$gt": ""}},
            {"email": {"$regex": ".*"}, "password": "x" * 10},
            {"username": ["victim"], "password": "victim password"},
            {"username": "victim", "password": 12345678},
            {"username": None, "password": "victim password"},
            {"username": True, "password": "victim password"},
        ]
        for body in attacks:
            response = await self.http.request("POST", "/api/auth/login", body)
            self.assertEqual((response.status, response.code), (400, "invalid_request"), body)
            self.assertNotIn("token", response.json())
        register = await self.http.request("POST", "/api/auth/register",
                                           {"username": {"$gt": ""}, "email": "e@example.com", "password": "correct horse"})
        self.assertEqual(register.json()["error"]["fields"], {"username": "must be a string"})

    async def test_malformed_bodies(self):
        """Wrong content type → 415, broken JSON or a non-object → 400, unknown field → 400, huge body → 413."""
        wrong_type = await self.http.request("POST", "/api/auth/login", raw=b"username=a", content_type="application/x-www-form-urlencoded")
        broken = await self.http.request("POST", "/api/auth/login", raw=b"{nope")
        array = await self.http.request("POST", "/api/auth/login", raw=b"[]")
        unknown = await self.http.request("POST", "/api/auth/register",
                                          {"username": "bob", "email": "b@example.com", "password": "correct horse", "role": "admin"})
        huge = await self.http.request("POST", "/api/auth/login", {"username": "x" * 70000, "password": "p"})
        self.assertEqual((wrong_type.status, wrong_type.code), (415, "unsupported_media_type"))
        self.assertEqual((broken.status, broken.code), (400, "invalid_request"))
        self.assertEqual((array.status, array.code), (400, "invalid_request"))
        self.assertEqual(unknown.json()["error"]["fields"], {"role": "unknown field"})
        self.assertEqual((huge.status, huge.code), (413, "too_large"))

    async def test_login_by_username_or_email_case_insensitively(self):
        """Login works with the username or the email in any case and returns a working token."""
        await self.http.register("Carol", password="carol password", email="carol@example.com")
        for body in ({"username": "carol"}, {"username": "CAROL"}, {"email": "Carol@Example.COM"}):
            response = await self.http.request("POST", "/api/auth/login", {**body, "password": "carol password"})
            self.assertEqual(response.status, 200, body)
            token = response.json()["token"]
            me = await self.http.request("GET", f"/api/users/{response.json()['user']['id']}", token=token)
            self.assertEqual(me.json()["username"], "Carol")

    async def test_wrong_credentials_are_401_with_one_message(self):
        """A wrong password and an unknown user give the same 401 body."""
        await self.http.register("dave", password="dave password")
        wrong = await self.http.request("POST", "/api/auth/login", {"username": "dave", "password": "not his password"})
        unknown = await self.http.request("POST", "/api/auth/login", {"username": "nobody", "password": "whatever pw"})
        self.assertEqual(wrong.status, 401)
        self.assertEqual(wrong.body, unknown.body)
        self.assertEqual(wrong.code, "unauthorized")

    async def test_refresh_gives_a_new_token_and_keeps_the_old_one(self):
        """Refresh returns a fresh token for the same user; the old one still works."""
        session = await self.http.register("erin")
        refreshed = await self.http.request("POST", "/api/auth/refresh", token=session["token"])
        self.assertEqual(refreshed.status, 200)
        self.assertEqual(set(refreshed.json()), {"token", "expires_at"})
        new = jwt.decode(refreshed.json()["token"], SECRET, algorithms=["HS256"])
        self.assertEqual(new["sub"], session["user"]["id"])
        for token in (session["token"], refreshed.json()["token"]):
            self.assertEqual((await self.http.request("GET", "/api/users", token=token)).status, 200)

    async def test_logout_revokes_that_token_only(self):
        """After logout the token is refused with 401; another token of the same user still works."""
        session = await self.http.register("frank", password="frank password")
        other = (await self.http.request("POST", "/api/auth/login", {"username": "frank", "password": "frank password"})).json()
        logout = await self.http.request("POST", "/api/auth/logout", token=session["token"])
        self.assertEqual((logout.status, logout.body), (204, b""))
        after = await self.http.request("GET", "/api/users", token=session["token"])
        self.assertEqual((after.status, after.code), (401, "unauthorized"))
        refresh = await self.http.request("POST", "/api/auth/refresh", token=session["token"])
        self.assertEqual(refresh.status, 401)
        self.assertEqual((await self.http.request("GET", "/api/users", token=other["token"])).status, 200)

    async def test_bad_tokens_are_401(self):
        """Missing, malformed, forged, expired, `alg: none`, HS512 and exp-less tokens are all 401."""
        session = await self.http.register("gina")
        claims = jwt.decode(session["token"], SECRET, algorithms=["HS256"])
        now = time.time()
        tokens = {
            "malformed": "not.a.jwt",
            "forged": jwt.encode(claims, b"another-secret-of-at-least-32-bytes!!", algorithm="HS256"),
            "expired": jwt.encode({**claims, "iat": now - 7200, "exp": int(now) - 3600}, SECRET, algorithm="HS256"),
            "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
            "HS512": jwt.encode(claims, SECRET, algorithm="HS512"),
            "no exp": jwt.encode({k: v for k, v in claims.items() if k != "exp"}, SECRET, algorithm="HS256"),
        }
        missing = await self.http.request("GET", "/api/users")
        self.assertEqual((missing.status, missing.code), (401, "unauthorized"))
        for name, token in tokens.items():
            response = await self.http.request("GET", "/api/users", token=token)
            self.assertEqual((response.status, response.code), (401, "unauthorized"), name)

    async def test_authentication_is_checked_before_the_body(self):
        """A bad body with no token is 401, not 400 (SPEC.md: auth before validation)."""
        session = await self.http.register("hank")
        response = await self.http.request("PATCH", f"/api/users/{session['user']['id']}", raw=b"{nope")
        self.assertEqual(response.status, 401)

    async def test_login_is_rate_limited_per_address_with_retry_after(self):
        """Past the burst, auth routes answer 429 with Retry-After."""
        server = await start_server(self, auth_rate=Rate(0.001, 3))  # no refill during the test
        http = server.client()
        statuses = []
        for _ in range(5):
            response = await http.request("POST", "/api/auth/login", {"username": "nobody", "password": "whatever pw"})
            statuses.append(response.status)
        self.assertEqual(statuses[:3], [401, 401, 401])
        self.assertEqual(statuses[3:], [429, 429])
        self.assertEqual(response.code, "rate_limited")
        self.assertGreaterEqual(int(response.header("Retry-After")), 1)
