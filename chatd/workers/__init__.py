"""``--workers N``: several chatd processes on one machine, sharing the listening sockets, the store and a bus.

With ``--workers`` above 1, ``twistd chatd`` runs a *parent* that serves nothing
itself (:mod:`chatd.workers.parent`). It binds every ``--listen`` socket once
(:mod:`chatd.workers.sockets`), starts the embedded store and the embedded bus
once when ``--mongo`` and ``--redis`` are not given, and keeps N *workers*
running (:mod:`chatd.workers.supervisor`): each is an ordinary chatd
(``python -m chatd.workers.child``, which runs ``twistd chatd``) that adopts the
parent's sockets instead of binding its own, so the kernel hands each new
connection to whichever worker accepts it first. No SO_REUSEPORT is needed, a
port 0 means the same port in every worker, and the port keeps accepting while a
worker restarts (the parent holds it open).

The parent tells a worker what it is through one environment variable
(:mod:`chatd.workers.role`); the worker's log events come back to the parent as
JSON and are logged there with a ``worker N`` prefix (:mod:`chatd.workers.logs`);
``/metrics`` answers for every worker, each series labelled with its worker
(:mod:`chatd.workers.metrics`).
"""
