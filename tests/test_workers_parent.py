"""Unit tests for --workers: the option, the parent/worker switch, a worker's role, and the parent's wiring."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace

from twisted.application.service import Service
from twisted.internet import defer
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from chatd import tap
from chatd.config import Config
from chatd.service import ChatdService
from chatd.workers.parent import WorkerParent
from chatd.workers.role import ENVIRONMENT, WorkerRole
from chatd.workers.sockets import Inherited
from tests.test_workers_supervisor import ProcessReactor

SECRET = "x" * 32


def options(argv=(), **environ) -> tap.Options:
    """``twistd chatd ARGV``'s options in this environment."""
    parsed = tap.Options(environ=environ)
    parsed.parseOptions(list(argv))
    return parsed


class OptionTests(SynchronousTestCase):
    """``--workers`` (``CHATD_WORKERS``): SPEC.md's option."""

    def test_default_and_sources(self):
        """One process by default; the option or the variable sets it, the option winning."""
        self.assertEqual(options().config.workers, 1)
        self.assertEqual(options(CHATD_WORKERS="3").config.workers, 3)
        self.assertEqual(options(["--workers", "2"], CHATD_WORKERS="3").config.workers, 2)

    def test_bounds(self):
        """0, a negative or non-number, or more than 64 workers are refused."""
        for value in ("0", "-1", "two", "65"):
            with self.subTest(value=value), self.assertRaises(UsageError):
                options(["--workers", value])

    def test_unix_listener_cannot_be_shared(self):
        """With several workers a ``unix:`` listener is refused at start; with one it is fine."""
        with self.assertRaises(UsageError) as raised:
            options(["--workers", "2", "--listen", "tcp:8080", "--listen", "unix:/tmp/c.sock"])
        self.assertIn("unix:/tmp/c.sock", str(raised.exception))
        self.assertEqual(options(["--listen", "unix:/tmp/c.sock"]).config.listen, ["unix:/tmp/c.sock"])

    def test_argv_and_directory_are_kept(self):
        """The options as given and the directory they were read in: what the workers are started with."""
        parsed = options(["--workers", "2", "--data-dir", "d"])
        self.assertEqual(parsed.argv, ["--workers", "2", "--data-dir", "d"])
        self.assertEqual(parsed.cwd, os.getcwd())
        self.assertEqual(parsed.config.data_dir, os.path.join(os.getcwd(), "d"))


class SwitchTests(SynchronousTestCase):
    """``makeService`` builds a parent, a worker or a single chatd."""

    def test_one_process_is_chatd_itself(self):
        """``--workers 1`` (the default) is the single chatd of before."""
        self.assertIsInstance(tap.makeService(options(["--jwt-secret", SECRET])), ChatdService)

    def test_several_make_a_parent(self):
        """``--workers 2`` makes the parent, which serves nothing itself."""
        service = tap.makeService(options(["--workers", "2", "--jwt-secret", SECRET]))
        self.assertIsInstance(service, WorkerParent)
        self.assertEqual(service.config.workers, 2)

    def test_a_worker_is_never_a_parent(self):
        """With ``CHATD_WORKER`` from its parent, the same options make a worker: a chatd, not a parent."""
        role = WorkerRole(1, os.getppid(), (Inherited(3, False, 8080),), 4, (5001, 5002))
        service = tap.makeService(options(["--workers", "2", "--jwt-secret", SECRET], CHATD_WORKER=role.encode()))
        self.assertIsInstance(service, ChatdService)
        self.assertEqual(service.getServiceNamed("worker-metrics").name, "worker-metrics")


class RoleTests(SynchronousTestCase):
    """``CHATD_WORKER``: what a worker is told, and refused when it does not come from its parent."""

    role = WorkerRole(2, 4321, (Inherited(3, False, 8080), Inherited(4, True, 8443)), 5, (40001, 40002))

    def test_round_trip(self):
        """A role read back from its variable is the role written."""
        self.assertEqual(WorkerRole.from_environ({ENVIRONMENT: self.role.encode()}, parent_pid=4321), self.role)

    def test_absent_means_not_a_worker(self):
        """No variable (or an empty one): not a worker."""
        self.assertIsNone(WorkerRole.from_environ({}))
        self.assertIsNone(WorkerRole.from_environ({ENVIRONMENT: ""}))

    def test_malformed_or_leaked_is_refused(self):
        """A malformed value, or one whose parent is not this process's parent, stops chatd with a message."""
        with self.assertRaises(UsageError):
            WorkerRole.from_environ({ENVIRONMENT: "{not json"}, parent_pid=4321)
        with self.assertRaises(UsageError):
            WorkerRole.from_environ({ENVIRONMENT: json.dumps({"index": 1})}, parent_pid=4321)
        with self.assertRaises(UsageError) as raised:
            WorkerRole.from_environ({ENVIRONMENT: self.role.encode()}, parent_pid=1)
        self.assertIn("4321", str(raised.exception))


class _Store:
    def uri(self):
        return "mongodb://chatd:store-password@127.0.0.1:27999/chatd"


class _Bus:
    def url(self):
        return "redis://:bus-password@127.0.0.1:6999/0"


class _Recording(Service):
    """A child service whose stop waits for the test, recording the order of stops."""

    def __init__(self, name: str, stops: list) -> None:
        self.name = name
        self._stops = stops
        self.stopped = defer.Deferred()

    def stopService(self):
        super().stopService()
        self._stops.append(self.name)
        return self.stopped


class ParentTests(SynchronousTestCase):
    """The parent's wiring: what a worker is started with, and the order of the stop."""

    def parent(self, **overrides) -> WorkerParent:
        config = replace(Config(listen=["tcp:0:interface=127.0.0.1", "tcp:0:interface=127.0.0.1"], workers=2,
                                jwt_secret=SECRET.encode(), data_dir=self.mktemp()), **overrides)
        parent = WorkerParent(config, ProcessReactor(), ["--workers", "2", "--bcrypt-cost", "4"], "/srv/chat",
                              {"PATH": "/usr/bin", "CHATD_WORKERS": "2"})
        parent.sockets.startService()
        self.addCleanup(parent.sockets.stopService)
        return parent

    def test_launch_passes_sockets_role_and_urls(self):
        """A worker runs ``chatd.workers.child`` with the parent's options in its directory, gets its own socket of
        each listener at the descriptor its role names, and the embedded store's and bus's URLs in the
        environment, not argv."""
        parent = self.parent()
        parent.embedded, parent.bus = _Store(), _Bus()
        launch = parent.launch(2)
        self.assertEqual(launch.argv, [sys.executable, "-m", "chatd.workers.child", "--workers", "2",
                                       "--bcrypt-cost", "4"])
        self.assertEqual(launch.path, "/srv/chat")
        role = WorkerRole.from_environ(launch.env, parent_pid=os.getpid())
        self.assertEqual((role.index, [s.fd for s in role.listen], role.metrics_fd), (2, [3, 4], 5))
        self.assertEqual([s.port for s in role.listen], [b.port for b in parent.sockets.listeners])
        self.assertEqual(launch.child_fds, {0: "w", 1: "r", 2: "r",
                                            3: parent.sockets.listeners[0].sockets[1].fileno(),
                                            4: parent.sockets.listeners[1].sockets[1].fileno(),
                                            5: parent.sockets.metrics[1].fileno()})
        self.assertNotEqual(parent.launch(1).child_fds[3], launch.child_fds[3], "each worker has its own socket")
        self.assertEqual(launch.env["CHATD_MONGO_URI"], _Store().uri())
        self.assertEqual(launch.env["CHATD_REDIS_URL"], _Bus().url())
        self.assertEqual(launch.env["PATH"], "/usr/bin")
        self.assertNotIn("password", " ".join(launch.argv))

    def test_given_store_and_bus_start_nothing(self):
        """With ``--mongo`` and ``--redis`` the parent starts neither, and the workers read them as given."""
        parent = self.parent(mongo="mongodb://db.example/chat", redis="redis://bus.example:6379/0")
        self.assertIsNone(parent.embedded)
        self.assertIsNone(parent.bus)
        env = parent.launch(1).env
        self.assertNotIn("CHATD_MONGO_URI", env)
        self.assertNotIn("CHATD_REDIS_URL", env)

    def test_stops_one_part_after_the_other(self):
        """Each part stops only once the part started after it has stopped (workers before the store)."""
        parent = self.parent(mongo="mongodb://db.example/chat", redis="redis://bus.example:6379/0")
        stops: list = []
        for name in ("store", "workers-stand-in"):
            _Recording(name, stops).setServiceParent(parent)
        for service in parent:
            if isinstance(service, _Recording):
                service.startService()
        parent.running = 1
        stopped = defer.ensureDeferred(parent.stopService())
        self.assertEqual(stops, ["workers-stand-in"])
        parent.getServiceNamed("workers-stand-in").stopped.callback(None)
        self.assertEqual(stops, ["workers-stand-in", "store"])
        self.assertNoResult(stopped)
        parent.getServiceNamed("store").stopped.callback(None)
        self.successResultOf(stopped)
