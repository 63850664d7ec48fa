"""The embedded store admits only chatd: a password on the loopback port, private files, and chatd still
working through the store's restarts (real chatd, real nx-27017 child, another local process as the stranger)."""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
from pathlib import Path

from twisted.internet import defer, utils
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase

from chatd.storage.nx_auth import Credentials
from tests.harness import ROOT, NxProcess, Server, start_server, test_config, wait_until

# Another local process trying the store with pymongo: what each operation answered.
PROBE = """
import json, sys
import pymongo
from pymongo.errors import OperationFailure
client = pymongo.MongoClient(sys.argv[1], directConnection=True, serverSelectionTimeoutMS=5000)
out = {}
for name, operation in [
    ("find", lambda: [u["username"] for u in client.chatd.users.find()]),
    ("insert", lambda: str(client.chatd.users.insert_one({"username": "mallory", "role": "admin"}).inserted_id)),
    ("list", lambda: client.list_database_names()),
]:
    try:
        out[name] = operation()
    except OperationFailure as e:
        out[name] = e.code
client.close()
print(json.dumps(out))
"""


async def probe(uri: str) -> dict:
    """Run PROBE against ``uri`` in a new process: each operation's result, or its MongoDB error code."""
    out, err, status = await utils.getProcessOutputAndValue(sys.executable, ["-c", PROBE, uri],
                                                            env=dict(os.environ), path=str(ROOT))
    assert status == 0, err.decode()
    return json.loads(out)


def modes(root: Path) -> dict[str, int]:
    """The permission bits of ``root`` and everything under it, by relative path."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


class StrangerTests(TestCase):
    """Finding 3: any local process could read every user (emails, bcrypt hashes) and make itself admin."""

    timeout = 120

    async def setUp(self):
        self.server = await start_server(self, mongo=None, jwt_secret=None)
        self.http = self.server.client()
        await self.http.register("alice")
        self.embedded = self.server.service.embedded

    async def test_no_password_and_wrong_password_are_refused(self):
        """Without the password every operation is Unauthorized (13); a wrong one fails (18); nothing is written."""
        anonymous = f"mongodb://127.0.0.1:{self.embedded.port}/chatd"
        self.assertEqual(await probe(anonymous), {"find": 13, "insert": 13, "list": 13})
        wrong = Credentials("chatd", "not-the-password").uri("127.0.0.1", self.embedded.port, "chatd")
        self.assertEqual(await probe(wrong), {"find": 18, "insert": 18, "list": 18})
        users = await self.http.request("GET", "/api/users", token=(await self.http.register("bob"))["token"])
        self.assertEqual(sorted(u["username"] for u in users.json()["users"]), ["alice", "bob"])

    async def test_the_password_admits(self):
        """The URI chatd writes for chatd-admin (mode 0600) authenticates and sees the users."""
        uri = self.embedded.uri_file.read_text().strip()
        self.assertEqual(stat.S_IMODE(self.embedded.uri_file.stat().st_mode), 0o600)
        result = await probe(uri)
        self.assertEqual(result["find"], ["alice"])
        self.assertIn("chatd", result["list"])

    async def test_password_is_not_on_the_command_line(self):
        """The store's child gets the password in a 0600 file, not in argv (which /proc shows everyone)."""
        password = Credentials.read(self.embedded.credentials_file).password
        cmdline = Path(f"/proc/{self.embedded.pid}/cmdline").read_bytes()
        self.assertIn(b"--auth-file", cmdline)
        self.assertNotIn(password.encode(), cmdline)

    async def test_every_file_is_private(self):
        """Everything in the data dir (SQLite files and their -wal/-shm, log, pid, secrets, URI) is 0600, dirs 0700."""
        data_dir = Path(self.server.config.data_dir)
        found = modes(data_dir)
        for name in ["jwt-secret", "store-credentials", "store-uri", "nx-27017.log", "nx-27017.pid",
                     "store/chatd.db", "store/chatd.db-wal", "store/chatd.db-shm"]:
            self.assertIn(name, found)
        self.assertEqual({name: mode for name, mode in found.items() if mode & 0o077}, {})
        self.assertEqual({name for name, mode in found.items() if mode == 0o700}, {".", "store"})


class OlderDataDirTests(TestCase):
    """A data dir an older chatd left readable to others is taken back at start."""

    timeout = 120

    async def test_loose_modes_are_restricted_at_start(self):
        """Files 0644 and directories 0755 become 0600 and 0700 when chatd starts, and the users are still there."""
        config = test_config(mongo=None, jwt_secret=None)
        first = await Server(config).start()
        session = await first.client().register("carol", password="carol password")
        await first.stop()
        data_dir = Path(config.data_dir)
        (data_dir / "store-credentials").unlink()  # an older chatd had no store password
        for path in [data_dir, *data_dir.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)

        second = await Server(config).start()
        self.addCleanup(lambda: defer.ensureDeferred(second.stop()))
        found = modes(data_dir)
        self.assertEqual({name: mode for name, mode in found.items() if mode & 0o077}, {})
        login = await second.client().request("POST", "/api/auth/login",
                                              {"username": "carol", "password": "carol password"})
        self.assertEqual((login.status, login.json()["user"]["id"]), (200, session["user"]["id"]))


class RestartUnderLoadTests(TestCase):
    """txmongo authenticates each new connection before using it: chatd keeps working across store restarts."""

    timeout = 180

    async def test_requests_during_store_restarts(self):
        """Requests run non-stop while the store is killed twice: each is answered 200 or 503, never 500, no
        command ever reaches the store before its connection logged in, and every request after the restarts
        succeeds."""
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        server = await start_server(self, mongo=None)
        http = server.client()
        session = await http.register("dave")
        embedded = server.service.embedded
        statuses: list[int] = []  # since the last kill
        every: list[int] = []
        running = True

        async def worker():
            while running:
                response = await http.request("GET", "/api/users", token=session["token"])
                statuses.append(response.status)
                every.append(response.status)

        workers = [defer.ensureDeferred(worker()) for _ in range(4)]
        try:
            for _ in range(2):
                await wait_until(lambda: statuses.count(200) > 20, 30, "requests to succeed")
                old_pid = embedded.pid
                os.kill(old_pid, signal.SIGKILL)
                await wait_until(lambda: embedded.pid not in (None, old_pid), 20, "a new store process")
                statuses.clear()
                await wait_until(lambda: statuses[-20:] == [200] * 20, 30, "requests to succeed again")
        finally:
            running = False
            await defer.gatherResults(workers)
        self.assertLessEqual(set(every), {200, 503})
        self.assertEqual(embedded.restarts, 2)
        # MongoStore turns an Unauthorized reply into a 503 and this warning: there must have been none.
        self.assertEqual([e for e in events if "refused chatd's login" in (formatEvent(e) or "")], [])


class ExternalStorePasswordTests(TestCase):
    """A --mongo URI with a password works, and the password appears in no log event."""

    timeout = 120

    async def test_password_uri_works_and_is_never_logged(self):
        """chatd on a password-protected store serves requests; no log event, formatted or raw, holds the password."""
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        credentials = Credentials("chatd", "external-store-password")
        auth_file = Path(self.mktemp())
        auth_file.parent.mkdir(parents=True, exist_ok=True)
        credentials.write(auth_file)
        nx = NxProcess(auth_file=str(auth_file)).start()
        self.addCleanup(nx.kill)
        self.assertEqual((await probe(nx.uri("chatd")))["find"], 13)

        server = await start_server(self, mongo=credentials.uri("127.0.0.1", nx.port, "chatd"))
        http = server.client()
        session = await http.register("erin")
        users = await http.request("GET", "/api/users", token=session["token"])
        self.assertEqual([u["username"] for u in users.json()["users"]], ["erin"])
        await server.stop()
        self.assertTrue(events)
        for event in events:
            self.assertNotIn(credentials.password, formatEvent(event) or "")
            self.assertNotIn(credentials.password, repr(event))

    async def test_refused_login_is_an_outage_until_fixed(self):
        """A password the store refuses makes /healthz and the API answer 503 (not 500), with a warning that
        shows no password; once the store accepts it, chatd recovers by itself."""
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        auth_file = Path(self.mktemp())
        auth_file.parent.mkdir(parents=True, exist_ok=True)
        Credentials("chatd", "the-stores-password").write(auth_file)
        nx = NxProcess(auth_file=str(auth_file)).start()
        self.addCleanup(lambda: nx.kill())
        chatds = Credentials("chatd", "chatds-idea-of-it")
        server = Server(test_config(mongo=chatds.uri("127.0.0.1", nx.port, "chatd")))
        server.service.startService()
        self.addCleanup(lambda: defer.ensureDeferred(server.stop()))
        await server.service.listener.listening
        http = server.client()

        health = await http.request("GET", "/healthz")
        self.assertEqual((health.status, health.json()["store"]), (503, "down"))
        refused = await http.request("POST", "/api/auth/register",
                                     {"username": "fay", "email": "fay@example.com", "password": "fay password"})
        self.assertEqual((refused.status, refused.code), (503, "unavailable"))
        self.assertTrue(any("refused chatd's login" in (formatEvent(e) or "") for e in events))
        for event in events:
            self.assertNotIn(chatds.password, formatEvent(event) or "")
            self.assertNotIn(chatds.password, repr(event))

        nx.kill()  # the operator gives the store the password chatd was configured with
        chatds.write(auth_file)
        nx = NxProcess(port=nx.port, directory=nx.directory, auth_file=str(auth_file)).start()
        await wait_until(lambda: server.service.store.ready, 30, "the store to accept chatd")
        await http.register("fay")
