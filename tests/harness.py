"""End-to-end helpers: a real chatd on loopback sockets with a real store, and an HTTP client.

Most tests share one nx-27017 process (started once per run, like TM's
``tests/mongod.py``) and get a database of their own, so each test starts from
nothing without paying for a new store process. Tests about the embedded store
itself start chatd without ``--mongo``.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import treq
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import SkipTest
from twisted.web.client import Agent, HTTPConnectionPool

from chatd import tap
from chatd.config import Config
from chatd.service import ChatdService
from chatd.storage.embedded import free_loopback_port
from chatd.storage.mongo import MongoStore

ROOT = Path(__file__).resolve().parent.parent
SECRET = b"test-secret-that-is-at-least-32-bytes-long"


def require(available: bool, what: str) -> None:
    """Skip when a tool is missing, unless CHATD_REQUIRE_ALL=1 (CI), where that is a failure."""
    if available:
        return
    if os.environ.get("CHATD_REQUIRE_ALL") == "1":
        raise AssertionError(f"{what} is required (CHATD_REQUIRE_ALL=1) but missing")
    raise SkipTest(f"{what} is not available")


def wait_for_port(port: int, seconds: float = 20.0) -> None:
    """Block (only in test set-up, before the reactor matters) until 127.0.0.1:port accepts."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds}s")


class NxProcess:
    """An nx-27017 child of the test run itself (not supervised by chatd).

    The shared test store admits anyone (it holds only test databases); with
    ``auth_file`` (a chatd.storage.nx_auth.Credentials file) it requires that
    password, as chatd's embedded store does.
    """

    def __init__(self, port: int | None = None, directory: str | None = None, auth_file: str | None = None) -> None:
        self.directory = directory or tempfile.mkdtemp(prefix="chatd-nx-")
        self.port = port or free_loopback_port()
        self.auth_file = os.path.abspath(auth_file) if auth_file else None  # the child runs in ROOT
        self.process: subprocess.Popen | None = None

    def start(self) -> "NxProcess":
        pid_file = Path(self.directory, "nx.pid")
        pid_file.unlink(missing_ok=True)
        auth = ["--auth-file", self.auth_file] if self.auth_file else []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chatd.storage.nx_child", "--port", str(self.port),
             "--data-dir", self.directory, "--pid-file", str(pid_file),
             "--log-file", str(Path(self.directory, "nx.log")), *auth],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        return self

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def uri(self, database: str) -> str:
        return f"mongodb://127.0.0.1:{self.port}/{database}"


_shared: NxProcess | None = None
_databases = itertools.count(1)


def shared_store_uri() -> str:
    """A fresh database on the run's shared nx-27017."""
    global _shared
    if _shared is None:
        _shared = NxProcess().start()
        atexit.register(lambda: (_shared.kill(), shutil.rmtree(_shared.directory, ignore_errors=True)))
    return _shared.uri(f"chatd_test_{os.getpid()}_{next(_databases)}")


def test_config(**overrides) -> Config:
    """Settings for a test server: loopback port 0, fast bcrypt, a fixed secret, the shared store.

    The switches come from the environment, as in chatd: CI runs the WebSocket tests
    again with ``CHATD_SPEEDUPS=0`` (.ci/run).
    """
    base = Config(
        listen=["tcp:0:interface=127.0.0.1"],
        mongo=None,
        data_dir=tempfile.mkdtemp(prefix="chatd-data-"),
        jwt_secret=SECRET,
        bcrypt_cost=4,
        store_timeout=2.0,
        static=str(ROOT / "www"),
        **tap.switches(os.environ),
    )
    config = replace(base, **overrides)
    if "mongo" not in overrides:
        config = replace(config, mongo=shared_store_uri())
    return config


class Response:
    def __init__(self, status: int, headers, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name)
        return values[0] if values else None

    @property
    def code(self) -> str | None:
        """The SPEC.md error code, if the body is an error."""
        try:
            return self.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return None

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.body[:200]!r}>"


class Client:
    """treq against one base URL; no persistent connections, so the reactor stays clean."""

    def __init__(self, base_url: str, agent=None) -> None:
        self.base_url = base_url
        self._pool = HTTPConnectionPool(reactor, persistent=False)
        self._agent = agent or Agent(reactor, pool=self._pool)

    async def request(self, method: str, path: str, body=None, token: str | None = None,
                      headers: dict | None = None, raw: bytes | None = None,
                      content_type: str | None = "application/json") -> Response:
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None and content_type and "Content-Type" not in all_headers:
            all_headers["Content-Type"] = content_type
        response = await treq.request(
            method, self.base_url + path, data=data,
            headers={k: [v] for k, v in all_headers.items()}, agent=self._agent,
        )
        return Response(response.code, response.headers, await treq.content(response))

    async def register(self, username: str, password: str = "correct horse", email: str | None = None) -> dict:
        response = await self.request("POST", "/api/auth/register", {
            "username": username, "email": email or f"{username}@example.com", "password": password,
        })
        assert response.status == 201, response
        return response.json()


class Server:
    """A running ChatdService in this process, on real sockets."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.service = ChatdService(config, reactor)

    async def start(self) -> "Server":
        self.service.startService()
        await self.service.listener.listening
        await wait_until(lambda: self.service.store.ready, 20, "the store to be ready")
        return self

    async def stop(self) -> None:
        if self.service.running:
            await self.service.stopService()

    @property
    def port(self) -> int:
        return self.service.listener.ports[0].getHost().port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Client:
        return Client(self.url)


async def wait_until(condition, seconds: float, what: str, interval: float = 0.05) -> None:
    """Poll ``condition`` (a callable, maybe async) without blocking the reactor."""
    deadline = time.monotonic() + seconds
    while True:
        result = condition()
        if isinstance(result, defer.Deferred) or hasattr(result, "__await__"):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        await deferLater(reactor, interval)


async def wait_for_health(http: "Client", process, seconds: float = 60) -> None:
    """Wait until a chatd subprocess answers /healthz 200 (or has died: the caller then checks ``poll()``)."""

    async def up():
        try:
            return (await http.request("GET", "/healthz")).status == 200
        except Exception:
            return process.poll() is not None  # stop waiting if it died

    await wait_until(up, seconds, "chatd to answer /healthz 200")


async def start_server(test, **overrides) -> Server:
    """Start a chatd for ``test`` and stop it (and remove its data dir) at cleanup."""
    server = await Server(test_config(**overrides)).start()
    test.addCleanup(shutil.rmtree, server.config.data_dir, True)
    test.addCleanup(lambda: defer.ensureDeferred(server.stop()))
    return server


async def started_mongo_store(test, timeout: float = 5) -> MongoStore:
    """A MongoStore on a fresh database of the run's shared nx-27017, ready (indexes and migrations done),
    stopped at ``test``'s cleanup."""
    store = MongoStore(reactor, shared_store_uri, timeout=timeout)
    store.startService()
    test.addCleanup(store.stopService)
    await wait_until(lambda: store.ready, 20, "the store's indexes and migrations")
    return store
