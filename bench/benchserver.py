"""A server under benchmark, run as a subprocess: start, wait for GET /healthz, tail its log, stop.

Also the embedded store (nx-27017, run as chatd runs it) for a peer, or for several chatd nodes, that
store their messages there, and a redis-server for the bus between chatd nodes.
Shared by the benchmark scripts in this directory (``login_stall.py``, ``ws_bench.py``), which are
run as ``python bench/<script>.py`` and so find this module beside them. Standard library only.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path


CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int | None) -> float | None:
    """utime + stime of ``pid`` in seconds, or None when it is gone."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)", utime and stime are fields 11 and 12
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kib(pid: int | None, field: str = "VmRSS") -> int | None:
    """A memory figure of /proc/<pid>/status in KiB (VmRSS now, VmHWM the peak), or None."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (e.g. chatd's embedded store process)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


class ServerStartError(RuntimeError):
    """The server exited, or GET /healthz did not answer 200 in time; the message ends with its log tail."""


class ServerProcess:
    """One server process, its output in ``log_path``.

    The caller builds the command (and owns any temp dir it points into); this class only runs it.
    ``close`` always stops it, whatever state it is in, so it belongs in a ``finally``.
    """

    def __init__(
        self,
        argv: list[str],
        *,
        port: int,
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
        name: str = "server",
        tail_lines: int = 20,
    ) -> None:
        self.argv = argv
        self.port = port
        self.log_path = Path(log_path)
        self.env = env
        self.cwd = cwd
        self.name = name  # names the server in error messages
        self.tail_lines = tail_lines
        self.popen: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def start(self) -> None:
        """Start the process; stdout and stderr both go to ``log_path``."""
        with open(self.log_path, "wb") as out:  # the child keeps its own copy of the descriptor
            self.popen = subprocess.Popen(
                self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                # Its own session and process group, so ``close`` can also kill what it spawned
                # (chatd's embedded store child) by the group id.
                stderr=subprocess.STDOUT, start_new_session=True,
            )

    def wait_healthy(self, timeout: float) -> None:
        """Poll GET /healthz on 127.0.0.1:``port`` until it answers 200.

        Raises ServerStartError as soon as the process exits, or after ``timeout`` seconds: a
        benchmark against a server that is not up would only measure errors.
        """
        end = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < end:
            if self.popen.poll() is not None:
                raise ServerStartError(f"{self.name} exited with status {self.popen.returncode}\n{self.log_tail()}")
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2.0)
            try:
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                body = response.read()
                if response.status == 200:
                    return
                last = f"HTTP {response.status} {body[:200]!r}"
            except OSError as e:  # not listening yet
                last = repr(e)
            finally:
                conn.close()
            time.sleep(0.2)
        raise ServerStartError(
            f"{self.name}: GET /healthz did not answer 200 within {timeout:.0f} s ({last})\n{self.log_tail()}"
        )

    def log_tail(self, lines: int | None = None) -> str:
        """The last ``lines`` (default ``tail_lines``) lines of the log, for error reports; "" if there is none."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-(self.tail_lines if lines is None else lines):])

    def close(self) -> None:
        """Stop the process: SIGTERM, up to 15 s to exit, then SIGKILL; then SIGKILL its whole group.

        SIGTERM first so twistd stops its services cleanly (the embedded store included); the
        group kill removes whatever is still left of the session ``start`` created.
        """
        p = self.popen
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class EmbeddedStore:
    """nx-27017 as chatd runs it (``python -m chatd.storage.nx_child``, password required), for a peer.

    The same program, options and SQLite layout as chatd's embedded store
    (chatd/storage/embedded.py), so a peer that stores its messages there is measured on the
    store chatd uses. The password is written to a 0600 file in ``directory`` (never on a command
    line); ``uri`` holds it, so it must not be logged. ``close`` always stops the process.
    """

    USER = "bench"

    def __init__(self, directory: Path, python: str, pythonpath: str, database: str = "chat") -> None:
        self.directory = Path(directory)
        self.python = python
        self.pythonpath = pythonpath
        self.database = database
        self.port = free_port()
        self.password = secrets.token_urlsafe(32)
        self.pid_file = self.directory / "nx-27017.pid"
        self.process: ServerProcess | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://{self.USER}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    @property
    def pid(self) -> int | None:
        """The store's pid, from the pid file nx writes, as chatd's is read (the process started, until then)."""
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return self.process.pid if self.process else None

    def start(self, timeout: float) -> None:
        """Start nx and wait until it accepts connections; ServerStartError (with its log) otherwise."""
        self.directory.mkdir(parents=True, exist_ok=True)
        credentials = self.directory / "store-credentials"
        fd = os.open(credentials, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"user": self.USER, "password": self.password}, out)
        argv = [
            self.python, "-m", "chatd.storage.nx_child", "--host", "127.0.0.1", "--port", str(self.port),
            "--data-dir", str(self.directory / "store"), "--pid-file", str(self.pid_file),
            "--log-file", str(self.directory / "nx-27017.log"), "--auth-file", str(credentials),
        ]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [self.pythonpath, env.get("PYTHONPATH")]))
        self.process = ServerProcess(argv, port=self.port, log_path=self.directory / "store.out", env=env,
                                     cwd=self.directory, name="nx-27017")
        self.process.start()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.process.popen.poll() is not None:
                raise ServerStartError(f"nx-27017 exited with status {self.process.popen.returncode}\n"
                                       f"{self.process.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                    return
            except OSError:
                time.sleep(0.2)
        raise ServerStartError(f"nx-27017 did not listen within {timeout:.0f} s\n{self.process.log_tail()}")

    def close(self) -> None:
        if self.process is not None:
            self.process.close()


class RedisServer:
    """A real ``redis-server`` for chatd's bus: a free loopback port, a dir of its own, nothing saved.

    Started as ``redis-server --port P --bind 127.0.0.1 --dir D --save "" --appendonly no`` (no
    password: loopback only, and it lives as long as one benchmark run). ``close`` stops it by its
    pid, like every process here.
    """

    def __init__(self, directory: Path, binary: str = "/usr/bin/redis-server") -> None:
        self.directory = Path(directory)
        self.binary = binary
        self.port = free_port()
        self.process: ServerProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, timeout: float) -> None:
        """Start it and wait until it answers PING; ServerStartError (with its log) otherwise."""
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                "--save", "", "--appendonly", "no", "--logfile", ""]
        self.process = ServerProcess(argv, port=self.port, log_path=self.directory / "redis.out",
                                     cwd=self.directory, name="redis-server")
        self.process.start()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.process.popen.poll() is not None:
                raise ServerStartError(f"redis-server exited with status {self.process.popen.returncode}\n"
                                       f"{self.process.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise ServerStartError(f"redis-server did not answer PING within {timeout:.0f} s\n{self.process.log_tail()}")

    def close(self) -> None:
        if self.process is not None:
            self.process.close()
