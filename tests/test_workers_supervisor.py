"""Unit tests for chatd.workers.supervisor and chatd.workers.logs: the restart policy, stopping, the log relay.

The workers run on a fake reactor (a Clock that records ``spawnProcess``), so
every delay is exact and nothing is really started.
"""

from __future__ import annotations

import io
import itertools

from twisted.internet import defer, error
from twisted.internet.task import Clock
from twisted.logger import Logger, LogLevel, formatEvent, jsonFileLogObserver
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from chatd.workers.logs import WorkerLogRelay
from chatd.workers.supervisor import Launch, Workers


class FakeProcess:
    """The transport of a fake child: records signals; a signal to an exited one raises, as Twisted's does."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.signals: list[str] = []

    def signalProcess(self, name: str) -> None:
        if self.pid is None:
            raise error.ProcessExitedAlready()
        self.signals.append(name)


class ProcessReactor(Clock):
    """A Clock whose ``spawnProcess`` records each call and connects the protocol to a FakeProcess."""

    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[tuple] = []
        self._pids = itertools.count(1000)
        self.fail = False

    def spawnProcess(self, process, executable, args, env=None, path=None, childFDs=None):
        if self.fail:
            raise OSError("no more processes")
        transport = FakeProcess(next(self._pids))
        process.makeConnection(transport)
        self.spawned.append((process, executable, args, env, path, childFDs))
        return transport


def end(process, signal: int | None = 9) -> None:
    """Make a fake worker exit (by ``signal``, or with status 0 when None)."""
    process.transport.pid = None
    reason = error.ProcessTerminated(signal=signal) if signal is not None else error.ProcessDone(0)
    process.processEnded(Failure(reason))


def launch(index: int) -> Launch:
    return Launch("/usr/bin/python3", ["python3", "-m", "chatd.workers.child", f"#{index}"], {"I": str(index)}, "/srv",
                  {0: "w", 1: "r", 2: "r", 3: 42})


class RestartTests(SynchronousTestCase):
    """A worker that dies is started again, sooner or later depending on how it has been doing."""

    def setUp(self):
        self.reactor = ProcessReactor()
        self.events: list[dict] = []
        self.workers = Workers(self.reactor, 2, launch, relay=lambda i: WorkerLogRelay(i, self.events.append))
        self.workers.startService()

    def current(self, index: int):
        """The protocol of worker ``index``'s current process."""
        pid = self.workers.pids[index]
        return next(p for p, *_ in self.reactor.spawned if p.pid == pid)

    def test_starts_every_worker_with_its_launch(self):
        """Each worker is spawned with its own argv, environment, directory and descriptors."""
        self.assertEqual([(executable, args, env, path, fds) for _, executable, args, env, path, fds in
                          self.reactor.spawned],
                         [("/usr/bin/python3", launch(i).argv, launch(i).env, "/srv", launch(i).child_fds)
                          for i in (1, 2)])
        self.assertEqual(self.workers.pids, {1: 1000, 2: 1001})

    def test_backoff_doubles_up_to_the_cap(self):
        """A worker that keeps dying is started again after 0.5, 1, 2, 4, 8, 10, 10 s; the other is left alone."""
        waited = []
        for _ in range(7):
            end(self.current(1))
            self.assertNotIn(1, self.workers.pids)
            before = len(self.reactor.spawned)
            delay = 0.0
            while len(self.reactor.spawned) == before:
                self.reactor.advance(0.25)
                delay += 0.25
            waited.append(delay)
        self.assertEqual(waited, [0.5, 1, 2, 4, 8, 10, 10])
        self.assertEqual(self.workers.pids[2], 1001)
        self.assertEqual(self.workers.restarts, 7)
        self.assertEqual(len(self.workers.history(1)), 8)

    def test_healthy_worker_restarts_promptly(self):
        """After a run of 30 s or more, a death is not a crash loop: the delay is back to 0.5 s."""
        for _ in range(3):
            end(self.current(1))
            self.reactor.advance(10)
        self.reactor.advance(30)
        end(self.current(1))
        self.reactor.advance(0.5)
        self.assertIn(1, self.workers.pids)

    def test_failed_spawn_is_retried(self):
        """A spawn that raises is logged and tried again after the delay."""
        end(self.current(1))
        self.reactor.fail = True
        self.reactor.advance(0.5)
        self.assertNotIn(1, self.workers.pids)
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        self.reactor.fail = False
        self.reactor.advance(1)
        self.assertIn(1, self.workers.pids)

    def test_exit_is_logged_with_its_cause(self):
        """The parent's log says which worker exited, how, and when it starts again."""
        logged = []
        from twisted.logger import globalLogPublisher

        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        end(self.current(2))
        texts = [formatEvent(e) for e in logged if e.get("log_namespace", "").startswith("chatd.workers")]
        self.assertIn("worker 2 (pid 1001) exited (signal 9); starting it again in 0.5s", texts)


class StopTests(SynchronousTestCase):
    """Stopping sends SIGTERM to every worker, SIGKILL to the slow, and restarts nothing."""

    def setUp(self):
        self.reactor = ProcessReactor()
        self.workers = Workers(self.reactor, 3, launch, grace=10, relay=lambda i: WorkerLogRelay(i, lambda e: None))
        self.workers.startService()
        self.processes = [p for p, *_ in self.reactor.spawned]

    def test_term_then_kill_after_grace(self):
        """All get SIGTERM at once; one still running 10 s later gets SIGKILL; stopped once all have exited."""
        stopped = defer.ensureDeferred(self.workers.stopService())
        self.assertEqual([p.transport.signals for p in self.processes], [["TERM"]] * 3)
        end(self.processes[0], 15)
        end(self.processes[1], None)
        self.assertNoResult(stopped)
        self.reactor.advance(10)
        self.assertEqual(self.processes[2].transport.signals, ["TERM", "KILL"])
        end(self.processes[2], 9)
        self.successResultOf(stopped)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_no_restart_after_stop(self):
        """A worker exiting during the stop, or a restart that was pending, starts nothing."""
        end(self.processes[0])
        self.assertEqual(len(self.reactor.getDelayedCalls()), 1)  # its restart
        stopped = defer.ensureDeferred(self.workers.stopService())
        for process in self.processes[1:]:
            end(process, 15)
        self.successResultOf(stopped)
        self.reactor.advance(60)
        self.assertEqual(len(self.reactor.spawned), 3)
        self.assertEqual(self.workers.pids, {})


def json_records(*messages: tuple) -> bytes:
    """What a worker's log observer writes for these (level, format, fields) events."""
    out = io.StringIO()
    log = Logger(namespace="chatd.example", observer=jsonFileLogObserver(out))
    for level, fmt, fields in messages:
        log.emit(level, fmt, **fields)
    return out.getvalue().encode("utf-8")


class RelayTests(SynchronousTestCase):
    """A worker's log events reach the parent's log with the worker's name, their text and level kept."""

    def setUp(self):
        self.events: list[dict] = []
        self.relay = WorkerLogRelay(2, self.events.append)

    def test_events_keep_text_and_level_and_gain_the_worker(self):
        """Events split across reads are rebuilt whole; their system names the worker and their namespace."""
        data = json_records((LogLevel.info, "listening on {kind} {port}", {"kind": "tcp", "port": 8080}),
                            (LogLevel.warn, "slow {n}", {"n": 3}))
        for i in range(0, len(data), 7):
            self.relay.events(data[i:i + 7])
        self.assertEqual([(formatEvent(e), e["log_level"], e["log_system"]) for e in self.events], [
            ("listening on tcp 8080", LogLevel.info, "worker 2: chatd.example#info"),
            ("slow 3", LogLevel.warn, "worker 2: chatd.example#warn"),
        ])
        self.assertNotIn("log_logger", self.events[0])

    def test_stderr_lines_are_warnings(self):
        """Standard error is logged a line at a time as warnings; an unterminated last line at the end."""
        self.relay.errors(b"Traceback (most recent call last):\n  File \"x\"")
        self.relay.errors(b", line 1\nValueError: bad")
        self.relay.flush()
        self.assertEqual([(formatEvent(e), e["log_level"], e["log_system"]) for e in self.events], [
            ("Traceback (most recent call last):", LogLevel.warn, "worker 2 stderr"),
            ('  File "x", line 1', LogLevel.warn, "worker 2 stderr"),
            ("ValueError: bad", LogLevel.warn, "worker 2 stderr"),
        ])

    def test_text_on_stdout_is_kept_as_text(self):
        """Something on standard output that is not an event record (a print before logging began) is kept."""
        self.relay.events(b"hello from a print\n")
        self.assertEqual([formatEvent(e) for e in self.events], ["hello from a print"])
