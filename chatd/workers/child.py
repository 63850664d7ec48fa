"""A worker's entry point: ``python -m chatd.workers.child [chatd options]`` runs ``twistd -n chatd`` as a worker.

The parent starts workers through this module rather than the ``twistd``
script so that, before anything else, a worker

- asks Linux to send it SIGTERM when its parent dies, even by SIGKILL
  (``PR_SET_PDEATHSIG``, as the embedded store's child does), and exits at once
  if the parent is already gone, so no worker outlives chatd;
- leaves the terminal's process group, so a Ctrl-C reaches the parent alone,
  which then stops the workers before the store they flush to.

It then hands over to twistd in the foreground, without a pid file (the parent
has one), logging through the parent (:mod:`chatd.workers.logs`).
"""

from __future__ import annotations

import json
import os
import sys

from chatd.deathsig import die_with_parent
from chatd.workers.role import ENVIRONMENT


def _die_with_parent(parent: int) -> None:
    die_with_parent()
    if os.getppid() != parent:  # the parent died before the request took effect
        raise SystemExit(f"chatd worker: parent {parent} is gone")


def twistd_argv(options: list[str]) -> list[str]:
    """twistd's command line for a worker with the chatd ``options``."""
    return ["twistd", "--logger=chatd.workers.logs.worker_observer", "--nodaemon", "--pidfile=", "chatd", *options]


def main(options: list[str]) -> None:
    """Become a worker of the parent named in ``CHATD_WORKER``, then run twistd."""
    try:
        parent = int(json.loads(os.environ[ENVIRONMENT])["parent"])
    except (KeyError, ValueError, TypeError):
        raise SystemExit(f"chatd worker: {ENVIRONMENT} is missing or malformed (only chatd starts workers)") from None
    _die_with_parent(parent)
    os.setpgid(0, 0)
    from twisted.scripts.twistd import run

    sys.argv = twistd_argv(options)
    run()


if __name__ == "__main__":
    main(sys.argv[1:])
