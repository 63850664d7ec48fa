"""Bans end to end: through the API and through the admin CLI, closing live sockets (real sockets, real store)."""

from __future__ import annotations

import sys

from twisted.internet import reactor, utils
from twisted.trial.unittest import TestCase

from tests.harness import ROOT, start_server, wait_until
from tests.wsclient import connect, handshake_status


async def admin_cli(*args: str) -> tuple[int, str, str]:
    """Run ``python -m chatd.cli.admin`` with ``args``: (exit status, stdout, stderr)."""
    out, err, status = await utils.getProcessOutputAndValue(sys.executable, ["-m", "chatd.cli.admin", *args], path=str(ROOT))
    return status, out.decode(), err.decode()


class BanTests(TestCase):
    timeout = 60

    async def setUp(self):
        self.server = await start_server(self)
        self.http = self.server.client()
        self.admin = await self.http.register("root")
        self.bob = await self.http.register("bob")
        self.carol = await self.http.register("carol")

    async def test_ban_through_the_api(self):
        """An admin's ban closes bob's socket with 4003 at once; his token and login are 403; unban lets him in."""
        ws = await connect(self.server.url, self.bob["token"], test=self)
        await ws.next("hello")
        bob_id = self.bob["user"]["id"]
        banned = await self.http.request("POST", f"/api/users/{bob_id}/ban", {"reason": "spamming the lobby"},
                                         token=self.admin["token"])
        self.assertEqual(banned.status, 204)
        self.assertEqual(await ws.closed.addTimeout(5, reactor), 4003)
        me = await self.http.request("GET", f"/api/users/{bob_id}", token=self.bob["token"])
        self.assertEqual((me.status, me.code), (403, "forbidden"))
        self.assertEqual(await handshake_status(self.server.url, self.bob["token"]), 403)
        login = await self.http.request("POST", "/api/auth/login", {"username": "bob", "password": "correct horse"})
        self.assertEqual(login.status, 403)
        self.assertIn("spamming the lobby", login.json()["error"]["message"])
        lifted = await self.http.request("DELETE", f"/api/users/{bob_id}/ban", token=self.admin["token"])
        self.assertEqual(lifted.status, 204)
        login = await self.http.request("POST", "/api/auth/login", {"username": "bob", "password": "correct horse"})
        self.assertEqual(login.status, 200)

    async def test_ban_rules(self):
        """Only admins ban (403); not themselves (403); an unknown id is 404; no body means no reason."""
        bob_id, root_id = self.bob["user"]["id"], self.admin["user"]["id"]
        by_carol = await self.http.request("POST", f"/api/users/{bob_id}/ban", {}, token=self.carol["token"])
        self.assertEqual((by_carol.status, by_carol.code), (403, "forbidden"))
        self_ban = await self.http.request("POST", f"/api/users/{root_id}/ban", {}, token=self.admin["token"])
        self.assertEqual((self_ban.status, self_ban.code), (403, "forbidden"))
        unknown = await self.http.request("POST", "/api/users/ffffffffffffffffffffffff/ban", token=self.admin["token"])
        self.assertEqual(unknown.status, 404)
        bad = await self.http.request("POST", f"/api/users/{bob_id}/ban", {"reason": 5}, token=self.admin["token"])
        self.assertEqual((bad.status, bad.json()["error"]["fields"]), (400, {"reason": "must be a string"}))
        bare = await self.http.request("POST", f"/api/users/{bob_id}/ban", token=self.admin["token"], content_type=None)
        self.assertEqual(bare.status, 204)

    async def test_ban_and_promote_through_the_cli(self):
        """The admin CLI works on the store; the running chatd closes bob's socket (4003) within seconds."""
        ws = await connect(self.server.url, self.bob["token"], test=self)
        await ws.next("hello")
        store = ["--mongo", self.server.config.mongo]
        status, out, err = await admin_cli(*store, "ban", "BOB", "--reason", "bot")
        self.assertEqual((status, out.strip()), (0, "bob is banned (bot)"), err)
        self.assertEqual(await ws.closed.addTimeout(10, reactor), 4003)
        self.assertEqual(await handshake_status(self.server.url, self.bob["token"]), 403)

        status, out, _ = await admin_cli(*store, "promote", "carol@example.com")
        self.assertEqual((status, out.strip()), (0, "carol is now an admin"))

        async def carol_is_admin():
            carol = await self.http.request("GET", f"/api/users/{self.carol['user']['id']}", token=self.carol["token"])
            return carol.json()["role"] == "admin"

        await wait_until(carol_is_admin, 10, "the server to see carol promoted")
        lifted = await self.http.request("DELETE", f"/api/users/{self.bob['user']['id']}/ban", token=self.carol["token"])
        self.assertEqual(lifted.status, 204)  # carol's new role works through the API

        status, _, err = await admin_cli(*store, "ban", "nobody")
        self.assertEqual(status, 1)
        self.assertIn("no user 'nobody'", err)
