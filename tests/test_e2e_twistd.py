"""chatd as an operator runs it: ``twistd -n chatd`` and ``twistd -ny chatd.tac`` in their own processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from twisted.trial.unittest import TestCase

from chatd.storage.embedded import free_loopback_port
from chatd.storage.nx_auth import Credentials
from tests.harness import ROOT, Client, wait_for_health, wait_until
from tests.test_e2e_edge import exchange
from tests.wsclient import handshake_request

TWISTD = [str(Path(sys.executable).with_name("twistd"))]  # the venv's twistd script


class DaemonTests(TestCase):
    timeout = 120

    def _spawn(self, argv: list[str], env: dict) -> tuple[subprocess.Popen, Path, int]:
        data_dir = Path(tempfile.mkdtemp(prefix="chatd-daemon-"))
        self.addCleanup(shutil.rmtree, data_dir, True)
        port = free_loopback_port()
        log = data_dir / "chatd.log"
        environ = {**os.environ, "CHATD_BCRYPT_COST": "4", "CHATD_DATA_DIR": str(data_dir / "data"),
                   "CHATD_LISTEN": f"tcp:{port}:interface=127.0.0.1", **env}
        # twistd's own options (--logfile) go before the plugin name or the .tac file.
        process = subprocess.Popen(argv[:1] + ["--logfile", str(log)] + argv[1:],
                                   cwd=ROOT, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

        def stop():
            if process.poll() is None:
                process.kill()
                process.wait(10)

        self.addCleanup(stop)
        return process, log, port

    async def _exercise(self, process: subprocess.Popen, log: Path, port: int) -> None:
        http = Client(f"http://127.0.0.1:{port}")

        await wait_for_health(http, process)
        self.assertIsNone(process.poll(), log.read_text())
        session = await http.register("alice", password="very secret password")
        await http.request("GET", "/api/users?after=x", token=session["token"])
        await http.request("GET", f"/ws?token={session['token']}")  # the token is in a URL the log sees
        # Handshakes Autobahn cannot parse (a space in the query) or that ask for its status page and a redirect.
        unparsable = handshake_request(port, session["token"]).replace(b" HTTP/1.1", b"&client=my laptop HTTP/1.1", 1)
        self.assertEqual((await exchange(port, unparsable)).status, b"400")
        for query in ("redirect=https://evil.example/phish", "redirect=//evil.example",
                      f"token={session['token']}&redirect=https://evil.example/&after=x"):
            answer = await exchange(port, f"GET /ws?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            self.assertEqual(answer.status, b"426", answer.response[:200])

        data_dir = log.parent / "data"
        store_pid = int((data_dir / "nx-27017.pid").read_text())
        store_password = Credentials.read(data_dir / "store-credentials").password
        process.send_signal(signal.SIGTERM)
        await wait_until(lambda: process.poll() is not None, 30, "chatd to exit on SIGTERM")
        # twistd re-raises the signal that stopped it, so the exit status reports SIGTERM.
        self.assertEqual(process.returncode, -signal.SIGTERM)
        await wait_until(lambda: not Path(f"/proc/{store_pid}").exists(), 10, "the embedded store to exit")

        text = log.read_text()
        self.assertIn("Server Shut Down.", text)
        self.assertIn("GET /healthz", text)
        self.assertNotIn(session["token"], text)
        self.assertNotIn(session["token"].split(".")[2], text)  # not even the signature
        self.assertNotIn("very secret password", text)
        self.assertNotIn("Traceback", text)
        # The embedded store's password is in its URI; neither chatd's log nor the store's shows it.
        self.assertNotIn(store_password, text)
        self.assertNotIn(store_password, (data_dir / "nx-27017.log").read_text())
        self.assertNotIn("evil.example", text)
        self.assertNotIn("laptop", text)

    async def test_twistd_plugin_runs_serves_and_stops(self):
        """`twistd -n chatd` starts with the embedded store, serves, logs no secret and stops cleanly with its store."""
        process, log, port = self._spawn(TWISTD + ["-n", "--pidfile=", "chatd"], {})
        await self._exercise(process, log, port)

    async def test_tac_file_runs_from_the_environment(self):
        """`twistd -ny chatd.tac` builds the same service from CHATD_* variables."""
        process, log, port = self._spawn(TWISTD + ["-ny", "chatd.tac", "--pidfile="], {})
        await self._exercise(process, log, port)

    async def test_short_secret_is_refused_at_start(self):
        """A --jwt-secret under 32 bytes stops chatd from starting, with a message saying why."""
        result = subprocess.run(TWISTD + ["-n", "--pidfile=", "chatd", "--jwt-secret", "short"], cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("--jwt-secret must be at least 32 bytes", result.stdout + result.stderr)

    async def test_admin_cli_on_the_embedded_store(self):
        """chatd-admin with --data-dir: on a running chatd's store, then with chatd stopped (it runs the store itself)."""
        from tests.test_e2e_moderation import admin_cli

        process, log, port = self._spawn(TWISTD + ["-n", "--pidfile=", "chatd"], {})
        http = Client(f"http://127.0.0.1:{port}")

        await wait_for_health(http, process)
        await http.register("alice")
        bob = await http.register("bob")
        data_dir = log.parent / "data"
        status, out, err = await admin_cli("--data-dir", str(data_dir), "promote", "bob")
        self.assertEqual((status, out.strip()), (0, "bob is now an admin"), err)

        async def bob_is_admin():
            me = await http.request("GET", f"/api/users/{bob['user']['id']}", token=bob["token"])
            return me.json()["role"] == "admin"

        await wait_until(bob_is_admin, 10, "chatd to see bob promoted")

        process.send_signal(signal.SIGTERM)
        await wait_until(lambda: process.poll() is not None, 30, "chatd to exit")
        status, out, err = await admin_cli("--data-dir", str(data_dir), "ban", "alice", "--reason", "locked out")
        self.assertEqual((status, out.strip()), (0, "alice is banned (locked out)"), err)
        self.assertFalse((data_dir / "nx-27017.pid").exists())  # the CLI's own store is gone again
        status, _, err = await admin_cli("--data-dir", str(data_dir.parent / "nowhere"), "unban", "alice")
        self.assertEqual(status, 1)
        self.assertIn("holds no chatd data", err)
