"""The parent of ``--workers N``: binds the sockets, runs the shared store and bus, keeps the workers running.

It serves no request itself. It starts, in order: the token secret (created
once here, so every worker reads the same), the listening sockets (a taken port
stops chatd before anything else has started), the embedded store unless
``--mongo``, the embedded bus unless ``--redis``, then the workers. It stops in
the reverse order, each part once the one before it has finished (not all at
once, as a ``MultiService`` would): the workers have flushed to the store and
exited before the bus and the store stop.

A worker gets the parent's chatd options as they were given (so it reads them
exactly as the parent did, from the same working directory and environment),
the store's and the bus's URLs in ``CHATD_MONGO_URI`` and ``CHATD_REDIS_URL``
when the parent runs them (passwords stay out of command lines, which every
local user can read), and its role in ``CHATD_WORKER`` (:mod:`chatd.workers.role`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from twisted.application.service import MultiService, Service
from twisted.internet import defer
from twisted.logger import Logger

import chatd
from chatd.accounts import secret
from chatd.bus.embedded import EmbeddedBus
from chatd.config import Config
from chatd.storage.embedded import EmbeddedStore
from chatd.workers.role import ENVIRONMENT, FIRST_INHERITED_FD, WorkerRole
from chatd.workers.sockets import BoundListener, Inherited, bind, kind_of, listening_socket
from chatd.workers.supervisor import Launch, Workers



class _SharedSecret(Service):
    """Creates the token secret (if there is none yet) before any worker starts, so that all of them share it."""

    name = "secret"

    def __init__(self, data_dir: str) -> None:
        self._data_dir = data_dir

    def startService(self) -> None:
        super().startService()
        secret.load_or_create(self._data_dir)


class ListeningSockets(Service):
    """Each worker's socket for every ``--listen``, and its private loopback socket for metrics; bound at start."""

    name = "sockets"
    _log = Logger()

    def __init__(self, descriptions: list[str], workers: int) -> None:
        self._descriptions = descriptions
        self._workers = workers
        self.listeners: list[BoundListener] = []
        self.metrics: list = []

    def startService(self) -> None:
        try:
            for description in self._descriptions:
                bound = bind(description, self._workers)
                self.listeners.append(bound)
                self._log.info("listening on {kind} {host}:{port} for {workers} workers", kind=kind_of(description),
                               host=bound.host, port=bound.port, workers=self._workers)
            self.metrics = [listening_socket("127.0.0.1", 0, 64) for _ in range(self._workers)]
        except Exception:
            self._close()
            raise
        super().startService()

    def stopService(self) -> None:
        super().stopService()
        self._close()

    def _close(self) -> None:
        for bound in self.listeners:
            bound.close()
        for sock in self.metrics:
            sock.close()
        self.listeners, self.metrics = [], []


class WorkerParent(MultiService):
    """``twistd chatd --workers N``'s service (N > 1).

    Tests reach in through ``sockets``, ``embedded``, ``bus`` and ``workers``.
    """

    _log = Logger()

    def __init__(self, config: Config, reactor, options: list[str], cwd: str, environ) -> None:
        super().__init__()
        self.config = config
        self._options = list(options)
        self._cwd = cwd
        self._environ = dict(environ)
        if config.jwt_secret is None:
            _SharedSecret(config.data_dir).setServiceParent(self)
        self.sockets = ListeningSockets(config.listen, config.workers)
        self.sockets.setServiceParent(self)
        self.embedded = None
        if config.mongo is None:
            self.embedded = EmbeddedStore(reactor, config.data_dir)
            self.embedded.setServiceParent(self)
        self.bus = None
        if config.redis is None:
            self.bus = EmbeddedBus(reactor, config.data_dir)
            self.bus.setServiceParent(self)
        self.workers = Workers(reactor, config.workers, self.launch)
        self.workers.setServiceParent(self)

    def role(self, index: int) -> WorkerRole:
        """What worker ``index`` is told: its sockets (fds from 3, one per ``--listen`` in order, then its metrics
        socket)."""
        listeners = self.sockets.listeners
        return WorkerRole(
            index=index, parent=os.getpid(),
            listen=tuple(Inherited(FIRST_INHERITED_FD + i, s.tls, s.port) for i, s in enumerate(listeners)),
            metrics_fd=FIRST_INHERITED_FD + len(listeners),
            metrics_ports=tuple(sock.getsockname()[1] for sock in self.sockets.metrics),
        )

    def launch(self, index: int) -> Launch:
        """How to start worker ``index`` now (the store's and bus's URLs are read at each start)."""
        role = self.role(index)
        # 0: a pipe nobody writes (not a closed fd a socket could land on), 1: log events, 2: stderr.
        child_fds: dict[int, object] = {0: "w", 1: "r", 2: "r"}
        for inherited, bound in zip(role.listen, self.sockets.listeners):
            child_fds[inherited.fd] = bound.sockets[index - 1].fileno()
        child_fds[role.metrics_fd] = self.sockets.metrics[index - 1].fileno()
        env = dict(self._environ)
        env[ENVIRONMENT] = role.encode()
        package_root = str(Path(chatd.__file__).resolve().parent.parent)  # works from a checkout too
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        if self.embedded is not None:
            env["CHATD_MONGO_URI"] = self.embedded.uri()
        if self.bus is not None:
            env["CHATD_REDIS_URL"] = self.bus.url()
        argv = [sys.executable, "-m", "chatd.workers.child", *self._options]
        return Launch(sys.executable, argv, env, self._cwd, child_fds)

    async def stopService(self) -> None:
        Service.stopService(self)
        for service in reversed(list(self)):
            if not service.running:
                continue
            try:
                await defer.maybeDeferred(service.stopService)
            except Exception:
                self._log.failure("stopping {name}", name=service.name)
