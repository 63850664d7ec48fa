"""The store as operators meet it: outages, the embedded store's supervision, restarts, TLS."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import tempfile
from pathlib import Path

from twisted.internet import defer, endpoints, reactor, ssl
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, BrowserLikePolicyForHTTPS, HTTPConnectionPool

from tests.harness import (
    Client,
    NxProcess,
    Server,
    start_server,
    test_config,
    wait_until,
)
from tests.tls import self_signed
from tests.wsclient import raw_handshake


async def _healthy(http: Client) -> bool:
    return (await http.request("GET", "/healthz")).status == 200


class EmbeddedStoreTests(TestCase):
    """chatd with no --mongo: it runs and supervises nx-27017 itself."""

    timeout = 120

    async def setUp(self):
        self.server = await start_server(self, mongo=None)
        self.http = self.server.client()
        self.embedded = self.server.service.embedded

    async def test_outage_gives_503_then_recovers_by_itself(self):
        """With the store stopped, /healthz and the API answer 503 (no hang, no 500); once it is back, 200."""
        session = await self.http.register("alice", password="alice password")
        await self.embedded.stopService()

        health = await self.http.request("GET", "/healthz")
        self.assertEqual((health.status, health.json()), (503, {"status": "down", "store": "down"}))
        users = await self.http.request("GET", "/api/users", token=session["token"])
        self.assertEqual((users.status, users.code), (503, "unavailable"))
        self.assertIsNotNone(users.header("Retry-After"))
        self.assertNotIn(b"Traceback", users.body)
        login = await self.http.request("POST", "/api/auth/login", {"username": "alice", "password": "alice password"})
        self.assertEqual(login.status, 503)

        self.embedded.startService()
        await wait_until(lambda: _healthy(self.http), 30, "the store to come back")
        login = await self.http.request("POST", "/api/auth/login", {"username": "alice", "password": "alice password"})
        self.assertEqual(login.status, 200)

    async def test_killed_store_is_restarted_with_its_data(self):
        """SIGKILL of the store process: chatd restarts it on the same port and every user is still there."""
        await self.http.register("bob", password="bob password")
        old_pid = self.embedded.pid
        os.kill(old_pid, signal.SIGKILL)
        await wait_until(lambda: self.embedded.pid not in (None, old_pid), 20, "a new store process")
        await wait_until(lambda: _healthy(self.http), 30, "the restarted store")
        self.assertEqual(self.embedded.restarts, 1)
        login = await self.http.request("POST", "/api/auth/login", {"username": "bob", "password": "bob password"})
        self.assertEqual(login.status, 200)

    async def test_stopping_chatd_stops_the_store(self):
        """Stopping chatd ends the store process and removes its pid file."""
        pid = self.embedded.pid
        await self.server.stop()
        self.assertFalse(Path(f"/proc/{pid}").exists() and b"nx_child" in Path(f"/proc/{pid}/cmdline").read_bytes())
        self.assertFalse(self.embedded.pid_file.exists())


class RestartTests(TestCase):
    timeout = 120

    async def test_restart_with_same_data_dir_keeps_users_and_secret(self):
        """A second chatd on the same data dir knows the users and accepts tokens the first one issued."""
        config = test_config(mongo=None, jwt_secret=None)
        self.addCleanup(shutil.rmtree, config.data_dir, True)
        first = await Server(config).start()
        session = await first.client().register("carol", password="carol password")
        await first.stop()
        secret_file = Path(config.data_dir, "jwt-secret")
        self.assertEqual(stat.S_IMODE(secret_file.stat().st_mode), 0o600)
        self.assertGreaterEqual(len(secret_file.read_bytes().strip()), 32)

        second = await Server(config).start()
        self.addCleanup(lambda: defer.ensureDeferred(second.stop()))
        http = second.client()
        me = await http.request("GET", f"/api/users/{session['user']['id']}", token=session["token"])
        self.assertEqual((me.status, me.json()["username"]), (200, "carol"))
        login = await http.request("POST", "/api/auth/login", {"username": "carol", "password": "carol password"})
        self.assertEqual(login.status, 200)


class ExternalStoreTests(TestCase):
    """chatd with --mongo: it starts nothing, and survives the store going away and coming back."""

    timeout = 120

    async def test_external_store_outage_and_recovery(self):
        """Killing the external store gives 503; starting it again on the same port brings chatd back."""
        nx = NxProcess().start()
        self.addCleanup(nx.kill)
        server = await start_server(self, mongo=nx.uri("chatd"))
        self.assertIsNone(server.service.embedded)
        http = server.client()
        session = await http.register("dora", password="dora password")

        nx.kill()
        health = await http.request("GET", "/healthz")
        self.assertEqual(health.status, 503)
        users = await http.request("GET", "/api/users", token=session["token"])
        self.assertEqual((users.status, users.code), (503, "unavailable"))

        restarted = NxProcess(port=nx.port, directory=nx.directory).start()
        self.addCleanup(restarted.kill)
        await wait_until(lambda: _healthy(http), 30, "the external store to come back")
        users = await http.request("GET", "/api/users", token=session["token"])
        self.assertEqual([u["username"] for u in users.json()["users"]], ["dora"])


class TlsTests(TestCase):
    timeout = 60

    async def test_ssl_listener_serves_https(self):
        """An ssl: --listen endpoint serves the API over HTTPS with the given certificate."""
        directory = tempfile.mkdtemp(prefix="chatd-tls-")
        key, cert = self_signed(directory)
        server = await start_server(self, listen=[f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"])
        trust = ssl.Certificate.loadPEM(cert.read_bytes())
        agent = Agent(reactor, contextFactory=BrowserLikePolicyForHTTPS(trustRoot=trust),
                      pool=HTTPConnectionPool(reactor, persistent=False))
        https = Client(f"https://localhost:{server.port}", agent=agent)
        health = await https.request("GET", "/healthz")
        self.assertEqual(health.json(), {"status": "ok", "store": "ok"})
        registered = await https.register("erin")
        self.assertEqual(registered["user"]["username"], "erin")
        # The WebSocket is on the same TLS port (wss://), handed over from the first bytes as on plain TCP.
        endpoint = endpoints.SSL4ClientEndpoint(reactor, "localhost", server.port, ssl.optionsForClientTLS("localhost", trust))
        status, _, first_frame = await raw_handshake(server.port, registered["token"], endpoint=endpoint, piece=6)
        self.assertEqual(status, b"101")
        self.assertIn(b'"type":"hello"', first_frame)
