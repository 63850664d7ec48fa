"""What the parent tells a worker about itself, in one environment variable (``CHATD_WORKER``).

The parent writes it (:meth:`WorkerRole.encode`) and ``chatd.tap`` reads it
(:meth:`WorkerRole.from_environ`): its presence is what makes a ``twistd chatd``
a worker, whatever ``--workers`` says, so a worker never becomes a parent. It
holds no secret (the store's and the bus's URLs go in ``CHATD_MONGO_URI`` and
``CHATD_REDIS_URL``, which only the worker's user can read in ``/proc``), only
which inherited descriptors to adopt, and where the other workers' metrics are.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from twisted.python import usage

from chatd.workers.sockets import AdoptingReactor, Inherited

ENVIRONMENT = "CHATD_WORKER"

# A worker's descriptors: 0-2 are stdin, the JSON log events and stderr; the sockets follow.
FIRST_INHERITED_FD = 3


@dataclass(frozen=True)
class WorkerRole:
    """Worker ``index`` (1..N) of the chatd ``parent`` (its pid): the sockets to adopt and the metrics peers.

    ``listen`` holds one inherited socket per ``--listen``, in that order;
    ``metrics_fd`` is this worker's private metrics socket (on loopback) and
    ``metrics_ports`` every worker's, by index, this one's included.
    """

    index: int
    parent: int
    listen: tuple[Inherited, ...]
    metrics_fd: int
    metrics_ports: tuple[int, ...]

    def encode(self) -> str:
        """The value of ``CHATD_WORKER`` for this worker."""
        return json.dumps({
            "index": self.index, "parent": self.parent,
            "listen": [{"fd": s.fd, "tls": s.tls, "port": s.port} for s in self.listen],
            "metrics_fd": self.metrics_fd, "metrics_ports": list(self.metrics_ports),
        })

    @classmethod
    def from_environ(cls, environ, parent_pid: int | None = None) -> "WorkerRole | None":
        """This process's role, or None when it is not a worker (no ``CHATD_WORKER``).

        Refuses (``UsageError``) a malformed value, or one inherited by a process
        that is not the child of the chatd that wrote it (a leaked variable).
        """
        text = environ.get(ENVIRONMENT)
        if not text:
            return None
        try:
            raw = json.loads(text)
            role = cls(
                index=int(raw["index"]), parent=int(raw["parent"]),
                listen=tuple(Inherited(int(s["fd"]), bool(s["tls"]), int(s["port"])) for s in raw["listen"]),
                metrics_fd=int(raw["metrics_fd"]), metrics_ports=tuple(int(p) for p in raw["metrics_ports"]),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise usage.UsageError(f"{ENVIRONMENT} is malformed ({e.__class__.__name__}): it is chatd's own") from None
        actual = os.getppid() if parent_pid is None else parent_pid
        if actual != role.parent:
            raise usage.UsageError(f"{ENVIRONMENT} is set, but this process is not a worker of chatd pid {role.parent}")
        return role

    def adopting(self, reactor) -> AdoptingReactor:
        """The reactor for this worker's ``--listen`` endpoints: they adopt the parent's sockets."""
        return AdoptingReactor(reactor, list(self.listen))

    def metrics_page(self, reactor, registry):
        """``/metrics`` for the site: every worker's metrics, each series labelled with its worker."""
        from chatd.workers.metrics import AllWorkersMetrics

        return AllWorkersMetrics(reactor, registry, self.index, self.metrics_ports)

    def own_metrics(self, reactor, registry):
        """A service answering this worker's own metrics on its private socket, for the others' ``/metrics``."""
        from chatd.workers.metrics import OwnMetricsService

        return OwnMetricsService(reactor, registry, self.index, self.metrics_fd)
