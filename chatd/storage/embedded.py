"""The embedded store: nx-27017 as a supervised child process.

With no ``--mongo``, chatd runs ``python -m chatd.storage.nx_child`` on a free
loopback port with its SQLite file in ``--data-dir``, restarts it if it dies,
and stops it on shutdown. Nothing else in chatd knows the store is embedded:
the store connects to :meth:`EmbeddedStore.uri` like any MongoDB.

Any local process can reach a loopback port, so the store admits only clients
that know a password, generated once into ``<data-dir>/store-credentials``
(mode 0600) and handed to the child as that file, never on its command line,
which every local user can read in ``/proc``.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

from twisted.logger import Logger

from chatd.storage import datadir
from chatd.storage.nx_auth import Credentials
from chatd.supervision import SupervisedChild

DATABASE = "chatd"


def free_loopback_port() -> int:
    """A TCP port nobody listens on right now (the child binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _is_our_child_program(pid: int) -> bool:
    try:
        return b"chatd.storage.nx_child" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


class DataDirInUse(Exception):
    """Another running chatd owns this data dir's embedded store."""


def clear_stale_pid_file(pid_file: Path) -> None:
    """Remove a pid file left by a chatd that was killed, and its orphaned store.

    nx refuses to start while its pid file names a live process. The child
    asks to die with its parent, but after a SIGKILL of chatd an orphan can
    survive (parent pid 1): it holds the database, so it is killed. A store
    whose parent is a live chatd is another server's: refuse rather than kill it.
    """
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        pid_file.unlink(missing_ok=True)
        return
    if _is_our_child_program(pid):
        parent = _parent_of(pid)
        if parent not in (None, 1, os.getpid()):
            raise DataDirInUse(f"{pid_file.parent} is in use by another chatd (its store is pid {pid})")
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


class EmbeddedStore(SupervisedChild):
    """Starts, supervises and stops the nx-27017 child."""

    name = "embedded-store"
    _log = Logger()

    def __init__(self, reactor, data_dir: str, port: int | None = None, max_restart_delay: float = 10.0) -> None:
        super().__init__(reactor, "embedded store", max_restart_delay)
        # Absolute, whatever it is given: the child runs in another working directory.
        self.data_dir = Path(os.path.abspath(data_dir))
        self.port = port
        self._credentials: Credentials | None = None

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "nx-27017.pid"

    @property
    def credentials_file(self) -> Path:
        """The store's user and password (mode 0600), read by the child at each start."""
        return self.data_dir / "store-credentials"

    def uri(self) -> str:
        """The store's address with its user and password, once started. Never log it."""
        if self._credentials is None:
            raise RuntimeError("the embedded store has not started")
        return self._credentials.uri("127.0.0.1", self.port, DATABASE)

    @property
    def uri_file(self) -> Path:
        """Where the running store's URI is written, for the admin CLI (``python -m chatd.cli.admin``)."""
        return self.data_dir / "store-uri"

    def startService(self) -> None:
        datadir.prepare(self.data_dir)
        (self.data_dir / "store").mkdir(mode=0o700, exist_ok=True)
        clear_stale_pid_file(self.pid_file)
        self._credentials = self._load_or_create_credentials()
        if self.port is None:
            self.port = free_loopback_port()  # kept across restarts: the store's URI stays valid
        super().startService()
        self._spawn()

    def _load_or_create_credentials(self) -> Credentials:
        try:
            return Credentials.read(self.credentials_file)
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as e:
            # Only the store's child ever reads them, at its start: new ones lose nothing.
            self._log.warn("replacing unreadable store credentials: {error}", error=str(e))
        credentials = Credentials.generate()
        credentials.write(self.credentials_file)
        return credentials

    def _spawn(self) -> None:
        self.pid_file.unlink(missing_ok=True)
        self.uri_file.unlink(missing_ok=True)
        try:
            current = Credentials.read(self.credentials_file)
        except (OSError, ValueError):
            current = None
        if current != self._credentials:  # removed or changed while chatd ran: the child must know ours
            self._credentials.write(self.credentials_file)
        args = [
            "--host", "127.0.0.1",
            "--port", str(self.port),
            # A directory (one SQLite file per database) rather than --db, whose single
            # file would mix every logical database together.
            "--data-dir", str(self.data_dir / "store"),
            "--pid-file", str(self.pid_file),
            "--log-file", str(self.data_dir / "nx-27017.log"),
            "--auth-file", str(self.credentials_file),
        ]
        self._start_child("chatd.storage.nx_child", args, self.data_dir)
        datadir.write_private(self.uri_file, self.uri() + "\n")
        self._log.info("embedded store starting on 127.0.0.1:{port} (pid {pid})", port=self.port, pid=self.pid)

    async def stopService(self) -> None:
        super().stopService()
        if self._child is None or self._child.transport.pid is None:
            return
        await self._stop_child()
        self.pid_file.unlink(missing_ok=True)
        self.uri_file.unlink(missing_ok=True)
