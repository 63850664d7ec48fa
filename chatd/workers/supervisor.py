"""Keeps N worker processes running: spawned, started again when one dies, stopped together.

**Restarts.** A worker that exits while chatd runs is started again after
0.5 s, then 1, 2, 4... up to 10 s if it keeps dying, and promptly again once a
worker of that slot has run for 30 s (the embedded store's policy). Its clients
reconnect meanwhile, to the other workers; the listening sockets stay open in
the parent, so new connections wait in the kernel's backlog for a worker
instead of being refused.

**Stopping.** Every worker gets SIGTERM at once and stops as a single chatd
does (its WebSockets told 1001, its writer flushed to the store); one that has
not exited after a grace period (10 s) gets SIGKILL. The service has stopped
when every worker has exited, so whatever the parent stops next (the store, the
bus) outlives them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from twisted.application.service import Service
from twisted.internet import defer, error
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger

from chatd.workers.logs import WorkerLogRelay


def describe(ended) -> str:
    """How a process ended, in a few words (``ProcessDone`` or ``ProcessTerminated``)."""
    if getattr(ended, "signal", None) is not None:
        return f"signal {ended.signal}"
    return f"exit code {getattr(ended, 'exitCode', None)}"


@dataclass
class Launch:
    """How to start one worker: ``reactor.spawnProcess``'s arguments."""

    executable: str
    argv: list[str]
    env: dict[str, str]
    path: str
    child_fds: dict[int, object]


@dataclass
class _Slot:
    index: int
    delay: float
    process: "_WorkerProcess | None" = None
    started_at: float = 0.0
    restart: object = None  # the pending IDelayedCall, if any
    pids: list[int] = field(default_factory=list)  # every pid this slot has had, oldest first


class _WorkerProcess(ProcessProtocol):
    """One worker process: its output goes to the log relay, its end to the supervisor."""

    def __init__(self, workers: "Workers", slot: _Slot, relay: WorkerLogRelay) -> None:
        self._workers = workers
        self.slot = slot
        self._relay = relay
        self.pid: int | None = None
        self.ended: defer.Deferred = defer.Deferred()

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if childFD == 1:
            self._relay.events(data)
        else:
            self._relay.errors(data)

    def processEnded(self, reason) -> None:
        self._relay.flush()
        self.ended.callback(None)
        self._workers._ended(self, describe(reason.value))


class Workers(Service):
    """Workers 1..``count``, each started from ``launch(index)``; see the module docstring for the policy."""

    name = "workers"
    _log = Logger()

    def __init__(self, reactor, count: int, launch: Callable[[int], Launch], *, grace: float = 10.0,
                 first_delay: float = 0.5, max_delay: float = 10.0, healthy_after: float = 30.0,
                 relay: Callable[[int], WorkerLogRelay] = WorkerLogRelay) -> None:
        self._reactor = reactor
        self._launch = launch
        self._relay = relay
        self._grace = grace
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._healthy_after = healthy_after
        self._slots = [_Slot(index, first_delay) for index in range(1, count + 1)]
        self.restarts = 0

    @property
    def pids(self) -> dict[int, int]:
        """The pid of each running worker, by index."""
        return {s.index: s.process.pid for s in self._slots if s.process is not None and s.process.pid is not None}

    def history(self, index: int) -> list[int]:
        """Every pid worker ``index`` has had, oldest first (for tests and the log)."""
        return list(self._slots[index - 1].pids)

    def startService(self) -> None:
        super().startService()
        for slot in self._slots:
            self._spawn(slot)

    def _spawn(self, slot: _Slot) -> None:
        slot.restart = None
        process = _WorkerProcess(self, slot, self._relay(slot.index))
        try:
            launch = self._launch(slot.index)
            transport = self._reactor.spawnProcess(process, launch.executable, launch.argv, env=launch.env,
                                                   path=launch.path, childFDs=launch.child_fds)
        except Exception:
            self._log.failure("could not start worker {index}", index=slot.index)
            self._schedule(slot)
            return
        process.pid = transport.pid
        slot.process = process
        slot.pids.append(transport.pid)
        slot.started_at = self._reactor.seconds()
        self._log.info("worker {index} started (pid {pid})", index=slot.index, pid=transport.pid)

    def _ended(self, process: _WorkerProcess, reason) -> None:
        slot = process.slot
        if slot.process is not process:
            return
        slot.process = None
        if not self.running:
            self._log.info("worker {index} (pid {pid}) stopped ({reason})", index=slot.index, pid=process.pid,
                           reason=reason)
            return
        if self._reactor.seconds() - slot.started_at >= self._healthy_after:
            slot.delay = self._first_delay  # it had been running well: this is not a crash loop
        self._log.warn("worker {index} (pid {pid}) exited ({reason}); starting it again in {delay}s",
                       index=slot.index, pid=process.pid, reason=reason, delay=slot.delay)
        self.restarts += 1
        self._schedule(slot)

    def _schedule(self, slot: _Slot) -> None:
        slot.restart = self._reactor.callLater(slot.delay, self._spawn, slot)
        slot.delay = min(slot.delay * 2, self._max_delay)

    async def stopService(self) -> None:
        super().stopService()
        for slot in self._slots:
            if slot.restart is not None and slot.restart.active():
                slot.restart.cancel()
            slot.restart = None
        running = [slot.process for slot in self._slots if slot.process is not None]
        kills = []
        for process in running:
            self._signal(process, "TERM")
            kills.append(self._reactor.callLater(self._grace, self._kill, process))
        await defer.DeferredList([process.ended for process in running])
        for kill in kills:
            if kill.active():
                kill.cancel()

    def _kill(self, process: _WorkerProcess) -> None:
        self._log.warn("worker {index} (pid {pid}) did not stop within {grace}s: killing it",
                       index=process.slot.index, pid=process.pid, grace=self._grace)
        self._signal(process, "KILL")

    @staticmethod
    def _signal(process: _WorkerProcess, signal: str) -> None:
        try:
            process.transport.signalProcess(signal)
        except error.ProcessExitedAlready:
            pass
