"""The users resource through a running chatd: listing, reading, changing and deleting accounts."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from tests.harness import start_server


class UsersTests(TestCase):
    timeout = 60

    async def setUp(self):
        self.server = await start_server(self)
        self.http = self.server.client()
        self.admin = await self.http.register("admin", password="admin password")
        self.bob = await self.http.register("bob", password="bob password")
        self.carol = await self.http.register("carol", password="carol password")

    def _id(self, session) -> str:
        return session["user"]["id"]

    async def test_list_pages_in_creation_order(self):
        """GET /api/users pages with limit/after in creation order; `next` is null on the last page."""
        first = await self.http.request("GET", "/api/users?limit=2", token=self.bob["token"])
        self.assertEqual(first.status, 200)
        self.assertEqual([u["username"] for u in first.json()["users"]], ["admin", "bob"])
        self.assertEqual(first.json()["next"], self._id(self.bob))
        second = await self.http.request("GET", f"/api/users?limit=2&after={first.json()['next']}", token=self.bob["token"])
        self.assertEqual([u["username"] for u in second.json()["users"]], ["carol"])
        self.assertIsNone(second.json()["next"])
        self.assertNotIn(b"hash", first.body + second.body)

    async def test_list_parameters_are_checked(self):
        """limit outside 1..200 and a non-boolean online are 400; online=true lists only online users."""
        for query in ("limit=0", "limit=201", "limit=abc", "online=maybe"):
            response = await self.http.request("GET", f"/api/users?{query}", token=self.bob["token"])
            self.assertEqual((response.status, response.code), (400, "invalid_request"), query)
        online = await self.http.request("GET", "/api/users?online=true", token=self.bob["token"])
        self.assertEqual(online.json(), {"users": [], "next": None})  # nobody has a socket open

    async def test_get_user_and_unknown_or_malformed_ids(self):
        """GET /api/users/{id} is the User; an unknown or malformed id is 404."""
        response = await self.http.request("GET", f"/api/users/{self._id(self.carol)}", token=self.bob["token"])
        self.assertEqual(response.json(), self.carol["user"])
        for user_id in ("ffffffffffffffffffffffff", "not-an-id", "%24ne"):
            missing = await self.http.request("GET", f"/api/users/{user_id}", token=self.bob["token"])
            self.assertEqual((missing.status, missing.code), (404, "not_found"), user_id)

    async def test_user_changes_own_username_and_email(self):
        """PATCH by the user themselves changes username and email, and the change is visible."""
        response = await self.http.request("PATCH", f"/api/users/{self._id(self.bob)}",
                                           {"username": "robert", "email": "robert@example.com"}, token=self.bob["token"])
        self.assertEqual(response.status, 200)
        self.assertEqual((response.json()["username"], response.json()["email"]), ("robert", "robert@example.com"))
        login = await self.http.request("POST", "/api/auth/login", {"username": "Robert", "password": "bob password"})
        self.assertEqual(login.status, 200)

    async def test_put_is_accepted_like_patch(self):
        """PUT /api/users/{id} behaves as PATCH."""
        response = await self.http.request("PUT", f"/api/users/{self._id(self.bob)}", {"email": "b2@example.com"}, token=self.bob["token"])
        self.assertEqual((response.status, response.json()["email"]), (200, "b2@example.com"))

    async def test_other_users_may_not_change_or_delete_you(self):
        """A non-admin changing or deleting someone else gets 403, and nothing changes."""
        patch = await self.http.request("PATCH", f"/api/users/{self._id(self.carol)}", {"email": "x@example.com"}, token=self.bob["token"])
        delete = await self.http.request("DELETE", f"/api/users/{self._id(self.carol)}", token=self.bob["token"])
        self.assertEqual((patch.status, patch.code, delete.status), (403, "forbidden", 403))
        still = await self.http.request("GET", f"/api/users/{self._id(self.carol)}", token=self.bob["token"])
        self.assertEqual(still.json()["email"], "carol@example.com")

    async def test_admin_may_change_others_and_roles(self):
        """An admin changes another user's email and role; a user may not change their own role."""
        own_role = await self.http.request("PATCH", f"/api/users/{self._id(self.bob)}", {"role": "admin"}, token=self.bob["token"])
        self.assertEqual((own_role.status, own_role.code), (403, "forbidden"))
        promoted = await self.http.request("PATCH", f"/api/users/{self._id(self.bob)}", {"role": "admin", "email": "boss@example.com"},
                                           token=self.admin["token"])
        self.assertEqual((promoted.json()["role"], promoted.json()["email"]), ("admin", "boss@example.com"))

    async def test_patch_conflicts_and_validation(self):
        """Taking another user's username is 409; an invalid value or unknown field is 400; unknown user 404."""
        taken = await self.http.request("PATCH", f"/api/users/{self._id(self.bob)}", {"username": "CAROL"}, token=self.bob["token"])
        self.assertEqual((taken.status, taken.json()["error"]["fields"]), (409, {"username": "already taken"}))
        bad = await self.http.request("PATCH", f"/api/users/{self._id(self.bob)}", {"email": "nope", "nickname": "b"}, token=self.bob["token"])
        self.assertEqual(bad.json()["error"]["fields"], {"email": "not a valid email address", "nickname": "unknown field"})
        missing = await self.http.request("PATCH", "/api/users/ffffffffffffffffffffffff", {"email": "z@example.com"}, token=self.admin["token"])
        self.assertEqual(missing.status, 404)

    async def test_password_change_revokes_earlier_tokens(self):
        """After a password change, the token used and every older one are 401; the new password logs in."""
        older = (await self.http.request("POST", "/api/auth/login", {"username": "bob", "password": "bob password"})).json()
        change = await self.http.request("PATCH", f"/api/users/{self._id(self.bob)}", {"password": "new bob password"}, token=self.bob["token"])
        self.assertEqual(change.status, 200)
        for token in (self.bob["token"], older["token"]):
            self.assertEqual((await self.http.request("GET", "/api/users", token=token)).status, 401)
        old_login = await self.http.request("POST", "/api/auth/login", {"username": "bob", "password": "bob password"})
        new_login = await self.http.request("POST", "/api/auth/login", {"username": "bob", "password": "new bob password"})
        self.assertEqual((old_login.status, new_login.status), (401, 200))
        self.assertEqual((await self.http.request("GET", "/api/users", token=new_login.json()["token"])).status, 200)

    async def test_delete_self_stops_tokens_and_frees_the_name(self):
        """DELETE by the user is 204; their token then fails, the user is 404 and the username is free."""
        delete = await self.http.request("DELETE", f"/api/users/{self._id(self.bob)}", token=self.bob["token"])
        self.assertEqual((delete.status, delete.body), (204, b""))
        self.assertEqual((await self.http.request("GET", "/api/users", token=self.bob["token"])).status, 401)
        gone = await self.http.request("GET", f"/api/users/{self._id(self.bob)}", token=self.carol["token"])
        self.assertEqual(gone.status, 404)
        again = await self.http.request("POST", "/api/auth/register", {"username": "bob", "email": "bob@example.com", "password": "bob password"})
        self.assertEqual(again.status, 201)

    async def test_admin_deletes_a_user_but_not_the_last_admin(self):
        """An admin may delete another user; the last admin cannot delete themselves."""
        delete = await self.http.request("DELETE", f"/api/users/{self._id(self.carol)}", token=self.admin["token"])
        self.assertEqual(delete.status, 204)
        last = await self.http.request("DELETE", f"/api/users/{self._id(self.admin)}", token=self.admin["token"])
        self.assertEqual((last.status, last.code), (403, "forbidden"))

    async def test_unknown_routes_and_methods_are_json_errors(self):
        """An unknown /api route is a JSON 404; a wrong method is a JSON 405 with Allow."""
        missing = await self.http.request("GET", "/api/nothing/here", token=self.bob["token"])
        wrong = await self.http.request("DELETE", "/api/auth/login")
        self.assertEqual((missing.status, missing.code), (404, "not_found"))
        self.assertEqual((wrong.status, wrong.code, wrong.header("Allow")), (405, "method_not_allowed", "POST"))
