"""``twistd -n chatd --log-format json`` as an operator runs it under systemd: every line of its standard
output is a JSON object, and a whole session leaves no password, token or query string in it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from twisted.trial.unittest import TestCase

from chatd.storage.embedded import free_loopback_port
from tests.harness import ROOT, Client, wait_for_health, wait_until
from tests.session import chat_session
from tests.test_e2e_twistd import TWISTD

KEYS = {"time", "level", "namespace", "system", "message"}


class JsonLogTests(TestCase):
    timeout = 180

    async def _chatd_session(self, *options: str, tac: bool = False) -> tuple[list[dict], str, object]:
        """Run chatd with ``options`` (or ``twistd -ny chatd.tac`` with CHATD_LOG_FORMAT=json) and a session
        against it; its stdout's lines as JSON, its stderr, the secrets."""
        directory = Path(tempfile.mkdtemp(prefix="chatd-jsonlog-"))
        self.addCleanup(shutil.rmtree, directory, True)
        port = free_loopback_port()
        out, err = open(directory / "stdout", "wb"), open(directory / "stderr", "wb")
        self.addCleanup(out.close)
        self.addCleanup(err.close)
        environ = {**os.environ, "CHATD_BCRYPT_COST": "4"}
        environ.pop("CHATD_LOG_FORMAT", None)
        if tac:
            environ.update(CHATD_LOG_FORMAT="json", CHATD_DATA_DIR=str(directory / "data"),
                           CHATD_LISTEN=f"tcp:{port}:interface=127.0.0.1")
            argv = TWISTD + ["-ny", "chatd.tac", "--pidfile="]
        else:
            argv = TWISTD + ["-n", "--pidfile=", "chatd", "--log-format", "json", "--data-dir", str(directory / "data"),
                             "--listen", f"tcp:{port}:interface=127.0.0.1", "--max-upload", "1048576", *options]
        process = subprocess.Popen(argv, cwd=ROOT, env=environ, stdout=out, stderr=err)

        def stop():
            if process.poll() is None:
                process.kill()
                process.wait(10)

        self.addCleanup(stop)
        await wait_for_health(Client(f"http://127.0.0.1:{port}"), process)
        self.assertIsNone(process.poll(), (directory / "stderr").read_text())
        secrets = await chat_session(self, f"http://127.0.0.1:{port}")
        process.send_signal(signal.SIGTERM)
        await wait_until(lambda: process.poll() is not None, 60, "chatd to exit on SIGTERM")
        text = (directory / "stdout").read_text()
        lines = []
        for number, line in enumerate(text.splitlines(), 1):
            try:
                record = json.loads(line)
            except ValueError:
                self.fail(f"line {number} of the log is not JSON: {line!r}")
            self.assertIsInstance(record, dict)
            self.assertLessEqual(KEYS, set(record), line)
            lines.append(record)
        whole = text + (directory / "stderr").read_text()
        for secret in secrets.passwords + secrets.tokens + [t.split(".")[2] for t in secrets.tokens]:
            self.assertNotIn(secret, whole)
        for query in secrets.queries:
            self.assertNotIn(query, whole)
        self.assertNotIn("?", "".join(r.get("path", "") for r in lines))
        return lines, (directory / "stderr").read_text(), secrets

    def _assert_session_logged(self, lines: list[dict]) -> None:
        messages = "\n".join(r["message"] for r in lines)
        self.assertIn("Server Shut Down.", messages)
        self.assertIn('"POST /api/auth/login HTTP/1.1" 401', messages)  # the failed login, path only
        self.assertIn('"POST /api/rooms/lobby/files HTTP/1.1" 201', messages)
        self.assertTrue(all(r["time"].endswith("Z") and r["time"][:2] == "20" for r in lines))
        self.assertLessEqual({r["level"] for r in lines}, {"debug", "info", "warn", "error", "critical"})
        self.assertNotIn("Traceback", messages)

    async def test_one_process(self):
        """One chatd: only JSON lines on stdout, nothing on stderr, and no secret of the session in either."""
        lines, stderr, _ = await self._chatd_session()
        self._assert_session_logged(lines)
        self.assertEqual(stderr, "")
        listening = [r for r in lines if r["message"].startswith("listening on tcp")]
        self.assertEqual((listening[0]["kind"], listening[0]["host"]), ("tcp", "127.0.0.1"))

    async def test_workers(self):
        """--workers 2: the parent's lines and its workers' (each with ``worker``) are all JSON, none secret."""
        lines, stderr, _ = await self._chatd_session("--workers", "2")
        self._assert_session_logged(lines)
        self.assertEqual(stderr, "")
        workers = {r.get("worker") for r in lines if r["system"].startswith("worker ")}
        self.assertEqual(workers, {1, 2})

    async def test_tac_file(self):
        """twistd -ny chatd.tac with CHATD_LOG_FORMAT=json: the same JSON lines, no secret."""
        lines, stderr, _ = await self._chatd_session(tac=True)
        self._assert_session_logged(lines)
        self.assertEqual(stderr, "")
