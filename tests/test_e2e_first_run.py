"""The README's run command as a newcomer types it: `twistd -n chatd` in a fresh directory, nothing configured."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

from twisted.internet import defer, reactor, utils
from twisted.trial.unittest import TestCase

from chatd.storage.embedded import EmbeddedStore, free_loopback_port
from chatd.storage.mongo import MongoStore
from tests.harness import Client, wait_for_health, wait_until
from tests.wsclient import connect

TWISTD = str(Path(sys.executable).with_name("twistd"))  # the venv's scripts
CHATD_ADMIN = str(Path(sys.executable).with_name("chatd-admin"))


class FirstRunTests(TestCase):
    timeout = 120

    async def test_twistd_in_a_new_directory_serves_and_stores(self):
        """With the relative defaults (./chatd-data, the packaged page), chatd starts its store in the working
        directory, registers, logs in and chats over the WebSocket, and stops cleanly on SIGTERM; chatd-admin
        then works on ./chatd-data from the same directory."""
        cwd = Path(tempfile.mkdtemp(prefix="chatd-first-run-"))
        self.addCleanup(shutil.rmtree, cwd, True)
        output = Path(tempfile.mkdtemp(prefix="chatd-first-run-log-"))
        self.addCleanup(shutil.rmtree, output, True)
        port = free_loopback_port()
        # Only the port (the test's to choose) and a fast bcrypt; every other setting is the default.
        environ = {k: v for k, v in os.environ.items() if not k.startswith("CHATD_")}
        environ.update(CHATD_LISTEN=f"tcp:{port}:interface=127.0.0.1", CHATD_BCRYPT_COST="4")
        with open(output / "stdout", "wb") as log:
            process = subprocess.Popen([TWISTD, "-n", "chatd"], cwd=cwd, env=environ,
                                       stdout=log, stderr=subprocess.STDOUT)

        def stop():
            if process.poll() is None:
                process.kill()
                process.wait(10)

        self.addCleanup(stop)
        http = Client(f"http://127.0.0.1:{port}")

        await wait_for_health(http, process)
        text = lambda: (output / "stdout").read_text(errors="replace")  # noqa: E731
        self.assertIsNone(process.poll(), text())

        page = await http.request("GET", "/")
        self.assertEqual(page.status, 200)
        await http.register("newcomer", password="newcomer password")
        await http.register("friend")
        login = await http.request("POST", "/api/auth/login", {"username": "newcomer", "password": "newcomer password"})
        self.assertEqual(login.status, 200, login)
        ws = await connect(http.base_url, login.json()["token"], test=self)
        await ws.next("hello")
        ws.send({"type": "join", "room": "lobby"})
        await ws.next("joined")
        ws.send({"type": "message", "room": "lobby", "text": "hello, world", "client_id": "first"})
        ack = await ws.next("ack")
        message = await ws.next("message")
        self.assertEqual((ack["client_id"], message["text"], message["seq"]), ("first", "hello, world", ack["seq"]))
        await ws.close()

        process.send_signal(signal.SIGTERM)
        await wait_until(lambda: process.poll() is not None, 30, "chatd to exit on SIGTERM")
        self.assertEqual(process.returncode, -signal.SIGTERM, text())
        self.assertIn("Server Shut Down.", text())
        self.assertNotIn("Traceback", text())

        data_dir = cwd / "chatd-data"
        self.assertTrue((data_dir / "store" / "chatd.db").is_file())
        self.assertEqual(stat.S_IMODE(data_dir.stat().st_mode), 0o700)
        self.assertFalse((data_dir / "nx-27017.pid").exists())  # the store stopped with chatd

        # README's "Locked out?" command, typed in the same directory with chatd stopped.
        admin = await utils.getProcessOutputAndValue(CHATD_ADMIN, ["--data-dir", "./chatd-data", "promote", "friend"],
                                                     env=environ, path=str(cwd))
        self.assertEqual((admin[2], admin[0].decode().strip()), (0, "friend is now an admin"), admin[1])


class RelativeDataDirTests(TestCase):
    timeout = 60

    async def test_embedded_store_given_a_relative_data_dir(self):
        """EmbeddedStore on its own, given a relative data dir, hands its child absolute paths and serves."""
        relative = self.mktemp()  # relative to the test's working directory
        self.assertFalse(os.path.isabs(relative))
        embedded = EmbeddedStore(reactor, relative)
        embedded.startService()
        self.addCleanup(lambda: defer.ensureDeferred(embedded.stopService()))
        store = MongoStore(reactor, embedded.uri, timeout=2.0)
        store.startService()
        self.addCleanup(lambda: defer.ensureDeferred(store.stopService()))
        await wait_until(lambda: store.ready, 30, "the store to be ready")
        await store.ping()

        argv = Path(f"/proc/{embedded.pid}/cmdline").read_bytes().split(b"\0")
        paths = [argv[i + 1].decode() for i, arg in enumerate(argv)
                 if arg in (b"--data-dir", b"--pid-file", b"--log-file", b"--auth-file")]
        self.assertEqual(len(paths), 4)
        self.assertTrue(all(path.startswith(os.path.abspath(relative) + "/") for path in paths), paths)
