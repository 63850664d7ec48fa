"""A child process chatd runs for itself and keeps running: the embedded store, the embedded bus.

:class:`SupervisedChild` is the part they share: it starts the child (a
``python -m chatd....`` module, with chatd's own package on its path), keeps
the last lines it wrote for the log, starts it again when it dies (0.5 s,
doubling to ``max_restart_delay``, back to 0.5 s after 30 healthy seconds),
and stops it with SIGTERM, then SIGKILL after 5 s. What the child is, and
what it needs on disk before each start, is the subclass's ``_spawn``.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from pathlib import Path

from twisted.application.service import Service
from twisted.internet import defer, error, protocol
from twisted.logger import Logger

import chatd

FIRST_DELAY = 0.5  # seconds before the first restart
HEALTHY = 30  # seconds of life after which a child that dies is restarted promptly again
KILL_AFTER = 5  # seconds between SIGTERM and SIGKILL at stop


class _ChildProtocol(protocol.ProcessProtocol):
    """Keeps the last lines of the child's output, for the log when it dies."""

    def __init__(self, supervisor: "SupervisedChild") -> None:
        self._supervisor = supervisor
        self.tail: deque[str] = deque(maxlen=20)
        self.ended = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        self.tail.extend(data.decode("utf-8", "replace").splitlines())

    errReceived = outReceived

    def processEnded(self, reason) -> None:
        self.ended.callback(None)  # ``reason`` is a Failure even for a clean exit
        self._supervisor._child_ended(self, reason)


class SupervisedChild(Service):
    """Starts, restarts and stops one child; ``what`` names it in the log ("embedded store")."""

    _log = Logger()

    def __init__(self, reactor, what: str, max_restart_delay: float = 10.0) -> None:
        self._reactor = reactor
        self._what = what
        self._max_delay = max_restart_delay
        self._child: _ChildProtocol | None = None
        self._restart = None
        self._delay = FIRST_DELAY
        self._started_at = 0.0
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        transport = self._child.transport if self._child else None
        return transport.pid if transport is not None else None

    def _spawn(self) -> None:
        """Prepare what the child needs and call :meth:`_start_child` (subclasses)."""
        raise NotImplementedError

    def _start_child(self, module: str, args: list[str], cwd: Path) -> None:
        """Run ``python -m module args`` in ``cwd``, chatd importable there whatever the working directory."""
        self._restart = None
        env = dict(os.environ)
        package_root = str(Path(chatd.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        self._child = _ChildProtocol(self)
        self._started_at = self._reactor.seconds()
        self._reactor.spawnProcess(self._child, sys.executable, [sys.executable, "-m", module, *args],
                                   env=env, path=str(cwd))

    def _child_ended(self, child: _ChildProtocol, reason) -> None:
        if child is not self._child:
            return
        self._child = None
        if not self.running:
            return
        if self._reactor.seconds() - self._started_at > HEALTHY:
            self._delay = FIRST_DELAY  # it had been healthy: restart promptly
        self._log.warn("{what} exited ({reason}); restarting in {delay}s. Last output: {tail}",
                       what=self._what, reason=reason.value, delay=self._delay, tail=" | ".join(child.tail))
        self.restarts += 1
        self._restart = self._reactor.callLater(self._delay, self._spawn)
        self._delay = min(self._delay * 2, self._max_delay)

    async def _stop_child(self) -> None:
        """No more restarts; SIGTERM to the child, SIGKILL if it still runs 5 s later; fires once it ended."""
        if self._restart is not None and self._restart.active():
            self._restart.cancel()
        child = self._child
        if child is None or child.transport.pid is None:
            return
        child.transport.signalProcess("TERM")
        kill = self._reactor.callLater(KILL_AFTER, self._kill, child)
        await child.ended
        if kill.active():
            kill.cancel()

    @staticmethod
    def _kill(child: _ChildProtocol) -> None:
        try:
            child.transport.signalProcess("KILL")
        except error.ProcessExitedAlready:
            pass
