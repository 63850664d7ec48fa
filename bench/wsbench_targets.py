"""The servers ws_bench.py measures, one class per target, and the processes whose CPU counts for each.

Targets: ``chatd`` (one process and its embedded store), ``chatd-workers2`` (``--workers 2``: a
parent, two workers on one port, the embedded store and the embedded bus, all children of the
parent), ``chatd-2nodes`` (two chatd processes on one nx-27017 store and one redis-server, each on
its own port: the generator spreads its sockets over both), ``node`` and ``node-mongo`` (the Node
peers). Every target is started fresh on free loopback ports in a temp dir of its own, and
``close`` stops every process it started, by pid, and removes the dir.

``processes()`` answers the pids that count for the target by role: "server" (chatd processes,
the parent and its workers, or the Node peer), "store" (nx-27017) and "bus" (redis-server or
the embedded valkey-server). They are found by walking the process tree of what was started, so
the workers and the embedded children are counted without knowing their pids in advance.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from benchserver import EmbeddedStore, RedisServer, ServerProcess, free_port

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PEER_DIR = BENCH / "peers" / "node-server"
MONGO_PEER_DIR = BENCH / "peers" / "node-mongo"
STARTUP_TIMEOUT = 60.0
# chatd's per-socket frame limit must not be what is measured (SPEC.md: 20/s,50 by default).
UNLIMITED_SOCKET_RATE = "100000/s,100000"


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def role_of(pid: int) -> str:
    """What a process in a target's tree is, from its command line."""
    line = cmdline(pid)
    if b"chatd.storage.nx_child" in line:
        return "store"
    if b"redis-server" in line or b"valkey-server" in line:
        return "bus"
    return "server"


def parents() -> dict[int, int]:
    """pid -> parent pid of every process, from one pass over /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return found


def trees(roots: list[int | None]) -> list[int]:
    """The ``roots`` and all their descendants (chatd's trees are two levels deep)."""
    table = parents()
    found = [pid for pid in roots if pid is not None and pid in table]
    level = set(found)
    while level:
        level = {pid for pid, parent in table.items() if parent in level and pid not in found}
        found += sorted(level)
    return found


def python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


class Server:
    """A server process in its own session and temp dir; ``close`` stops it and removes the dir."""

    name = "?"
    register_users = False  # the Node peers take any user id
    revocation = False  # closes a socket whose token is logged out (SPEC.md); the peers do not

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix=f"ws-bench-{self.name}-"))
        self.log_path = self.tmp / "server.log"
        self.process: ServerProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def urls(self) -> list[str]:
        """Every address of the target; the generator spreads its sockets over them."""
        return [self.url]

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def roots(self) -> list[int | None]:
        """The processes started here; ``processes`` walks their trees."""
        return [self.pid]

    def processes(self) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {"server": [], "store": [], "bus": []}
        for pid in trees(self.roots()):
            found[role_of(pid)].append(pid)
        return found

    def command(self) -> tuple[list[str], dict]:
        raise NotImplementedError

    def start(self) -> None:
        argv, env = self.command()
        self.process = ServerProcess(argv, port=self.port, log_path=self.log_path, env=env, cwd=self.tmp, name=self.name)
        self.process.start()
        self.process.wait_healthy(STARTUP_TIMEOUT)

    def log_tail(self) -> str:
        return self.process.log_tail() if self.process else ""

    def close(self) -> None:
        try:
            if self.process is not None:
                self.process.close()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def chatd_argv(secret: str, port: int, data_dir: Path, backlog: int | None, extra: list[str] = ()) -> list[str]:
    """chatd as a benchmark runs it: relaxed limits, so they are not what is measured."""
    twistd = REPO / ".venv" / "bin" / "twistd"
    return [
        str(twistd) if twistd.exists() else shutil.which("twistd") or "twistd",
        "-n", "--pidfile=", "chatd",
        "--data-dir", str(data_dir),
        "--listen", f"tcp:{port}:interface=127.0.0.1" + (f":backlog={backlog}" if backlog else ""),
        "--jwt-secret", secret,
        "--auth-rate", "0",
        "--socket-rate", UNLIMITED_SOCKET_RATE,
        "--bcrypt-cost", "4",
        # Every socket of the load comes from one address, and the caps that protect a server
        # from one address (issue 9) would refuse most of them: off, as the rates above.
        "--handshake-rate", "0",
        "--max-sockets-per-address", "1000000",
        "--max-sockets-per-user", "1000000",
        *extra,
    ]


def chatd_env(**chatd: str) -> dict:
    """The environment without any CHATD_* of ours (every option comes from the command line), plus ``chatd``.

    A store URI holds its password: it goes to chatd in CHATD_MONGO_URI, never on a command line.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATD_")}
    env.update(chatd)
    return env


class ChatdServer(Server):
    name = "chatd"
    register_users = True  # tokens must name real users
    revocation = True
    backlog: int | None = None  # --chatd-backlog: a listen backlog other than chatd's default (1024)
    extra: list[str] = []

    def command(self) -> tuple[list[str], dict]:
        return chatd_argv(self.secret, self.port, self.tmp / "data", self.backlog, self.extra), chatd_env()


class ChatdWorkers(ChatdServer):
    """``--workers 2`` on one port: the kernel hands each connection to one worker; the embedded bus."""

    name = "chatd-workers2"
    extra = ["--workers", "2"]


class ChatdTwoNodes(Server):
    """Two chatd processes, each its own port and data dir, on one nx-27017 store and one redis-server."""

    name = "chatd-2nodes"
    register_users = True
    revocation = True

    def __init__(self, secret: str) -> None:
        super().__init__(secret)
        self.store = EmbeddedStore(self.tmp / "store", python(), str(REPO), database="chat")
        self.redis = RedisServer(self.tmp / "redis")
        self.nodes: list[ServerProcess] = []
        self.ports = [self.port, free_port()]

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.ports]

    def roots(self) -> list[int | None]:
        return [node.pid for node in self.nodes] + [self.store.pid, self.redis.pid]

    def start(self) -> None:
        self.store.start(STARTUP_TIMEOUT)
        self.redis.start(STARTUP_TIMEOUT)
        for i, port in enumerate(self.ports):
            argv = chatd_argv(self.secret, port, self.tmp / f"node{i}", ChatdServer.backlog)
            env = chatd_env(CHATD_MONGO_URI=self.store.uri, CHATD_REDIS_URL=self.redis.url)
            node = ServerProcess(argv, port=port, log_path=self.tmp / f"node{i}.log", env=env, cwd=self.tmp,
                                 name=f"chatd node {i}")
            self.nodes.append(node)
            node.start()
        for node in self.nodes:
            node.wait_healthy(STARTUP_TIMEOUT)

    def log_tail(self) -> str:
        parts = [f"(node {i})\n{node.log_tail()}" for i, node in enumerate(self.nodes)]
        if self.redis.process:
            parts.append(f"(redis-server)\n{self.redis.process.log_tail()}")
        return "\n".join(parts)

    def close(self) -> None:
        try:
            for node in self.nodes:  # the nodes first, so they never see their store or bus vanish
                node.close()
        finally:
            try:
                self.redis.close()
                self.store.close()
            finally:
                super().close()


class NodeServer(Server):
    name = "node"

    def command(self) -> tuple[list[str], dict]:
        env = dict(os.environ, PORT=str(self.port), CHATD_JWT_SECRET=self.secret)
        return ["node", str(PEER_DIR / "server.js")], env


class NodeMongoServer(Server):
    """bench/peers/node-mongo on an nx-27017 store of its own, started (and counted) like chatd's."""

    name = "node-mongo"

    def __init__(self, secret: str) -> None:
        super().__init__(secret)
        self.store = EmbeddedStore(self.tmp / "data", python(), str(REPO))

    def start(self) -> None:
        self.store.start(STARTUP_TIMEOUT)
        super().start()

    def roots(self) -> list[int | None]:
        return [self.pid, self.store.pid]

    def command(self) -> tuple[list[str], dict]:
        # The URI holds the store's password: it goes to the peer in its environment, never to a log.
        env = dict(os.environ, PORT=str(self.port), CHATD_JWT_SECRET=self.secret, MONGODB_URI=self.store.uri)
        return ["node", str(MONGO_PEER_DIR / "server.js")], env

    def log_tail(self) -> str:
        store = self.store.process.log_tail() if self.store.process else ""
        return "\n".join(filter(None, [super().log_tail(), store and f"(nx-27017)\n{store}"]))

    def close(self) -> None:
        try:
            if self.process is not None:
                self.process.close()  # the peer first, so it never sees its store vanish
        finally:
            try:
                self.store.close()
            finally:
                super().close()


SERVERS = {cls.name: cls for cls in (ChatdServer, ChatdTwoNodes, ChatdWorkers, NodeServer, NodeMongoServer)}
PEERS = {"node": PEER_DIR, "node-mongo": MONGO_PEER_DIR}
# Shorthands of --target; a comma-separated list of names works too.
TARGETS = {"both": ["node", "chatd"], "all": ["node", "node-mongo", "chatd"],
           "scale": ["chatd", "chatd-2nodes", "chatd-workers2", "node"],
           "cost": ["chatd-base", "chatd", "node"]}
