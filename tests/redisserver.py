"""A real ``redis-server`` for tests: started by the test on a free loopback port, in a directory of its own.

apt's ``redis-server`` (CI installs it; without it the tests skip, or fail
under ``CHATD_REQUIRE_ALL=1``). Nothing is saved (``--save ""``, no AOF); the
process is the test's own, killed by pid at cleanup. ``command`` is a tiny
blocking client for set-up and assertions (loopback, bounded by a timeout),
so tests can look at Redis without going through the code under test.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile

from chatd.storage.embedded import free_loopback_port
from tests.harness import require, wait_for_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def require_redis() -> None:
    """Skip (fail under CHATD_REQUIRE_ALL=1) when apt's redis-server is not installed."""
    require(os.access(REDIS_SERVER, os.X_OK), "redis-server (apt-get install redis-server)")


class RedisServer:
    """One redis-server process; ``start`` again after ``kill`` reuses the same port and password."""

    def __init__(self, password: str | None = None, tls: tuple[str, str] | None = None) -> None:
        require_redis()
        self.password = password
        self.tls = tls  # (certificate file, key file): the port then speaks TLS only
        self.port = free_loopback_port()
        self.directory = tempfile.mkdtemp(prefix="chatd-redis-")
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def url(self, db: int = 0, password: str | None = None) -> str:
        secret = password if password is not None else self.password
        auth = f":{secret}@" if secret is not None else ""
        return f"{'rediss' if self.tls else 'redis'}://{auth}127.0.0.1:{self.port}/{db}"

    def start(self) -> "RedisServer":
        argv = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", self.directory, "--logfile", os.path.join(self.directory, "redis.log")]
        if self.tls is not None:
            certificate, key = self.tls
            argv += ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", certificate,
                     "--tls-key-file", key, "--tls-auth-clients", "no"]
        if self.password is not None:
            argv += ["--requirepass", self.password]  # a test's throwaway password: argv is fine here
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, 10)
        return self

    def kill(self) -> None:
        """SIGKILL (a crash: no goodbye to clients), and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a paused one must be able to die
            self.process.kill()
            self.process.wait(10)

    def pause(self) -> None:
        """SIGSTOP: the sockets stay open and nothing answers (a hung or partitioned Redis)."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)

    def command(self, *args, timeout: float = 5.0):
        """Send one command (after AUTH, if there is a password) and return its decoded reply (not over TLS)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            reader = sock.makefile("rb")
            if self.password is not None:
                sock.sendall(encode("AUTH", self.password))
                read_reply(reader)
            sock.sendall(encode(*args))
            return read_reply(reader)


def encode(*args) -> bytes:
    """A command in RESP."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def read_reply(reader):
    """One RESP2 reply from a binary file object (errors come back as RuntimeError)."""
    line = reader.readline()[:-2]
    kind, rest = line[:1], line[1:]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        length = int(rest)
        return None if length < 0 else reader.read(length + 2)[:-2]
    if kind == b"*":
        count = int(rest)
        return None if count < 0 else [read_reply(reader) for _ in range(count)]
    raise RuntimeError(f"unexpected reply {line!r}")


def start_redis(test, password: str | None = None, tls: tuple[str, str] | None = None) -> RedisServer:
    """A started RedisServer that ``test`` kills (by pid) and removes at cleanup."""
    server = RedisServer(password, tls)
    test.addCleanup(server.cleanup)
    return server.start()
