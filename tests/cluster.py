"""Several real chatd processes (twistd subprocesses) sharing one store and one Redis bus.

Each node has its own port, data dir and log; all share ``SECRET`` (so a token from one
is good on every other), the store at ``store_uri`` and the bus at ``redis_url``. Every
process a test starts here is stopped at its cleanup, by pid.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from chatd.storage.embedded import free_loopback_port
from tests.harness import ROOT, SECRET, Client, wait_for_health, wait_until

TWISTD = str(Path(sys.executable).with_name("twistd"))
FAST = {  # the tests' users and sockets are many and quick: no limit gets in the way
    "CHATD_BCRYPT_COST": "4",
    "CHATD_AUTH_RATE": "0",
    "CHATD_HANDSHAKE_RATE": "0",
    "CHATD_SOCKET_RATE": "100000/s,100000",
}


class ChatdNode:
    """One chatd process: ``start()``, ``await ready()``, ``kill()``, ``await stop()``; ``url``/``client()``."""

    def __init__(self, test, name: str, store_uri: str, redis_url: str | None, extra=()) -> None:
        self.test = test
        self.name = name
        self.store_uri = store_uri
        self.redis_url = redis_url
        self.extra = list(extra)
        self.port = free_loopback_port()
        self.data_dir = tempfile.mkdtemp(prefix=f"chatd-{name}-")
        self.log = Path(self.data_dir, "chatd.log")
        self.process: subprocess.Popen | None = None
        test.addCleanup(shutil.rmtree, self.data_dir, True)
        test.addCleanup(self.kill)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Client:
        return Client(self.url)

    def start(self) -> "ChatdNode":
        bus = ["--redis", self.redis_url] if self.redis_url else []
        self.process = subprocess.Popen(
            [TWISTD, "--logfile", str(self.log), "-n", "--pidfile=", "chatd", "--data-dir", self.data_dir,
             "--listen", f"tcp:{self.port}:interface=127.0.0.1", "--mongo", self.store_uri, *bus, *self.extra],
            cwd=ROOT, env={**os.environ, **FAST, "CHATD_JWT_SECRET": SECRET.decode()},
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        return self

    async def ready(self) -> "ChatdNode":
        await wait_for_health(self.client(), self.process)
        self.test.assertIsNone(self.process.poll(), f"{self.name} died; its log:\n{self.tail()}")
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            if sig == signal.SIGKILL:
                self.process.wait(10)

    async def stop(self) -> int:
        """SIGTERM, and wait (without blocking the reactor) until the process has exited."""
        self.kill(signal.SIGTERM)
        await wait_until(lambda: self.process.poll() is not None, 30, f"{self.name} to stop")
        return self.process.returncode

    async def health(self) -> dict:
        return (await self.client().request("GET", "/healthz")).json()

    def tail(self, lines: int = 40) -> str:
        """The log's last ``lines`` but health checks (twistd rotates it at 1 MB: the rotated part counts too)."""
        text = ""
        for path in (self.log.with_name(self.log.name + ".1"), self.log):
            try:
                text += path.read_text(errors="replace")
            except OSError:
                pass
        kept = [line for line in text.splitlines() if "GET /healthz" not in line]  # tests poll it
        return "\n".join(kept[-lines:]) or "(no log)"
