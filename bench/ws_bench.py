#!/usr/bin/env python3
"""WebSocket benchmark: chatd against two Node.js peers, the same protocol under the same load.

The peers: the plainest Node.js server (bench/peers/node-server, everything in memory) and the
one a tutorial reader writes (bench/peers/node-mongo: the same plus the official mongodb driver,
each message stored before it is acked, on the embedded store chatd uses, started here for it).

Run by hand (it is not a test):

    source .venv/bin/activate
    python bench/ws_bench.py --target both                      # every scenario, node and chatd
    python bench/ws_bench.py --target all --scenario fanout     # node, node-mongo and chatd
    python bench/ws_bench.py --target node --scenario fanout    # one scenario, one server
    python bench/ws_bench.py --target chatd --scenario connections --connections 2000
    python bench/ws_bench.py --target both --json results.json  # also keep every figure

For each target and scenario a fresh server is started on a free 127.0.0.1 port (chatd with
its embedded store in a temp dir; node-mongo with an nx-27017 store of its own, run as chatd
runs it), the load generator bench/ws-load/load.js runs the scenario, and everything is stopped
and removed afterwards. The generator prints "@@mark <name>" lines on stderr when a measured
phase starts and ends; at each mark this script samples, from /proc, the CPU seconds
(utime+stime) of the server, of its store process (chatd's embedded store, node-mongo's nx) and
of the generator, and the server's resident memory. From those:

    CPU µs per delivery   = server CPU seconds in the phase / message frames delivered * 1e6
                            (and "server+store": the store process's CPU seconds added)
    KiB per idle socket   = (server RSS with the sockets open - RSS before) / sockets opened

Scenarios: fanout (R receivers + S senders in one room, a fixed rate), find-max (fanout with the
rate stepped up until p99 > 100 ms or a message is lost), rooms (200 rooms x 5 members, every
member sends), connections (N sockets opened in waves, then left idle). Only the standard library
is used; the Node packages are installed with `npm ci` when node_modules is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchserver import EmbeddedStore, ServerProcess, cpu_seconds, free_port, status_kib  # bench/benchserver.py: the script's directory is on sys.path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
LOAD_DIR = BENCH / "ws-load"
PEER_DIR = BENCH / "peers" / "node-server"
MONGO_PEER_DIR = BENCH / "peers" / "node-mongo"
SCENARIOS = ("fanout", "find-max", "rooms", "connections")
STARTUP_TIMEOUT = 60.0
# chatd's per-socket frame limit must not be what is measured (SPEC.md: 20/s,50 by default).
UNLIMITED_SOCKET_RATE = "100000/s,100000"
# Generator options this script passes through when given (name -> type).
GENERATOR_OPTIONS = {
    "receivers": int, "senders": int, "rate": float, "duration": float, "step-duration": float,
    "max-rate": float, "rooms": int, "members": int, "connections": int, "wave": int,
    "settle": float, "drain": float, "text-size": int,
}


def log(text: str) -> None:
    print(f"[ws_bench] {text}", file=sys.stderr, flush=True)


# -- /proc readings ------------------------------------------------------------------------------


def rss_kib(pid: int | None) -> int | None:
    return status_kib(pid, "VmRSS")


def listen_overflows() -> int | None:
    """The kernel's TcpExtListenOverflows counter (system-wide): connections a full accept queue dropped."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:]))
            return int(table["ListenOverflows"]) if "ListenOverflows" in table else None
    return None


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


# -- the servers ---------------------------------------------------------------------------------


class Server:
    """A server process in its own session and temp dir; ``close`` stops it and removes the dir."""

    name = "?"

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
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def store_pid(self) -> int | None:
        return None

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


class ChatdServer(Server):
    name = "chatd"
    register_users = True  # tokens must name real users
    backlog: int | None = None  # --chatd-backlog: a listen backlog other than chatd's default (1024)

    def command(self) -> tuple[list[str], dict]:
        twistd = REPO / ".venv" / "bin" / "twistd"
        argv = [
            str(twistd) if twistd.exists() else shutil.which("twistd") or "twistd",
            "-n", "--pidfile=", "chatd",
            "--data-dir", str(self.tmp / "data"),
            "--listen", f"tcp:{self.port}:interface=127.0.0.1" + (f":backlog={self.backlog}" if self.backlog else ""),
            "--jwt-secret", self.secret,
            "--auth-rate", "0",
            "--socket-rate", UNLIMITED_SOCKET_RATE,
            "--bcrypt-cost", "4",
            # Every socket of the load comes from one address, and the caps that protect a server
            # from one address (issue 9) would refuse most of them: off, as the rates above.
            "--handshake-rate", "0",
            "--max-sockets-per-address", "1000000",
            "--max-sockets-per-user", "1000000",
        ]
        # Every option comes from the command line: no CHATD_* variable of ours may change a default.
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATD_")}
        return argv, env

    def store_pid(self) -> int | None:
        """The embedded store: the pid in <data-dir>/nx-27017.pid, if it really is chatd's store child."""
        try:
            pid = int((self.tmp / "data" / "nx-27017.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if b"chatd.storage.nx_child" in cmdline(pid) else None


class NodeServer(Server):
    name = "node"
    register_users = False  # the peer takes any user id

    def command(self) -> tuple[list[str], dict]:
        env = dict(os.environ, PORT=str(self.port), CHATD_JWT_SECRET=self.secret)
        return ["node", str(PEER_DIR / "server.js")], env


class NodeMongoServer(Server):
    """bench/peers/node-mongo on an nx-27017 store of its own, started (and counted) like chatd's."""

    name = "node-mongo"
    register_users = False  # the peer takes any user id

    def __init__(self, secret: str) -> None:
        super().__init__(secret)
        python = REPO / ".venv" / "bin" / "python"
        self.store = EmbeddedStore(self.tmp / "data", str(python) if python.exists() else sys.executable, str(REPO))

    def start(self) -> None:
        self.store.start(STARTUP_TIMEOUT)
        super().start()

    def command(self) -> tuple[list[str], dict]:
        # The URI holds the store's password: it goes to the peer in its environment, never to a log.
        env = dict(os.environ, PORT=str(self.port), CHATD_JWT_SECRET=self.secret, MONGODB_URI=self.store.uri)
        return ["node", str(MONGO_PEER_DIR / "server.js")], env

    def store_pid(self) -> int | None:
        pid = self.store.pid
        return pid if pid is not None and b"chatd.storage.nx_child" in cmdline(pid) else None

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


SERVERS = {"chatd": ChatdServer, "node": NodeServer, "node-mongo": NodeMongoServer}
PEERS = {"node": PEER_DIR, "node-mongo": MONGO_PEER_DIR}
TARGETS = {"both": ["node", "chatd"], "all": ["node", "node-mongo", "chatd"]}


def ensure_node_modules(targets: list[str]) -> None:
    for directory in [LOAD_DIR] + [PEERS[t] for t in targets if t in PEERS]:
        if (directory / "node_modules").is_dir():
            continue
        command = ["npm", "ci"] if (directory / "package-lock.json").exists() else ["npm", "install"]
        log(f"{' '.join(command)} in {directory.relative_to(REPO)}")
        subprocess.run(command + ["--no-audit", "--no-fund"], cwd=directory, check=True, timeout=600,
                       stdout=subprocess.DEVNULL)


# -- one generator run, sampled at its marks -----------------------------------------------------


class GeneratorRun:
    """Runs load.js; at every "@@mark <name>" line samples CPU and memory into ``marks[name]``."""

    def __init__(self, server: Server, argv: list[str], time_limit: float) -> None:
        self.server = server
        self.argv = argv
        self.time_limit = time_limit
        self.marks: dict[str, dict] = {}
        self.store = server.store_pid()

    def sample(self, generator_pid: int) -> dict:
        return {
            "t": time.monotonic(),
            "server_cpu": cpu_seconds(self.server.pid),
            "store_cpu": cpu_seconds(self.store),
            "generator_cpu": cpu_seconds(generator_pid),
            "server_rss_kib": rss_kib(self.server.pid),
            "store_rss_kib": rss_kib(self.store),
            "listen_overflows": listen_overflows(),
        }

    def run(self) -> dict:
        with tempfile.TemporaryFile() as stdout:
            process = subprocess.Popen(self.argv, cwd=LOAD_DIR, stdin=subprocess.DEVNULL, stdout=stdout,
                                       stderr=subprocess.PIPE, text=True, start_new_session=True)
            reader = threading.Thread(target=self.follow, args=(process,), daemon=True)
            reader.start()
            try:
                process.wait(timeout=self.time_limit + 30)
            except subprocess.TimeoutExpired:
                log("the generator overran its time limit; killing it")
            finally:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)
                reader.join(timeout=10)
            stdout.seek(0)
            text = stdout.read().decode(errors="replace")
        if process.returncode != 0:
            raise RuntimeError(f"load.js exited with {process.returncode}")
        return json.loads(text)

    def follow(self, process: subprocess.Popen) -> None:
        """Sample at marks as soon as they arrive; pass every other line through."""
        for line in process.stderr:
            if line.startswith("@@mark "):
                self.marks[line.split(None, 1)[1].strip()] = self.sample(process.pid)
            else:
                sys.stderr.write(line)
                sys.stderr.flush()

    def phase(self, name: str) -> dict | None:
        """CPU seconds used between "<name>-start" and "<name>-end", and the wall time."""
        start, end = self.marks.get(f"{name}-start"), self.marks.get(f"{name}-end")
        if not start or not end:
            return None

        def delta(key: str) -> float | None:
            if start[key] is None or end[key] is None:
                return None
            return round(end[key] - start[key], 3)

        return {
            "wall_s": round(end["t"] - start["t"], 3),
            "server_cpu_s": delta("server_cpu"),
            "store_cpu_s": delta("store_cpu"),
            "generator_cpu_s": delta("generator_cpu"),
        }


def generator_argv(scenario: str, server: Server, secret: str, args: argparse.Namespace) -> list[str]:
    argv = ["node", str(LOAD_DIR / "load.js"), "--url", server.url, "--secret", secret,
            "--scenario", "fanout" if scenario == "find-max" else scenario,
            "--time-limit", str(args.time_limit)]
    if scenario == "find-max":
        argv.append("--find-max")
    if server.register_users:
        argv.append("--register")
    for name in GENERATOR_OPTIONS:
        value = getattr(args, name.replace("-", "_"))
        if value is not None:
            argv += [f"--{name}", str(value)]
    return argv


# -- turning marks and generator output into figures ----------------------------------------------


def per_delivery(cpu: float | None, deliveries: int) -> float | None:
    return None if cpu is None or not deliveries else round(cpu / deliveries * 1e6, 2)


def delivery_figures(out: dict, phase: dict | None) -> dict:
    """Figures of one measured message phase (fanout, rooms, a find-max step)."""
    phase = phase or {}
    server, store = phase.get("server_cpu_s"), phase.get("store_cpu_s")
    both = None if server is None else server + (store or 0.0)
    wall = phase.get("wall_s")
    return {
        **phase,
        "server_cpu_us_per_delivery": per_delivery(server, out["deliveries"]),
        "server_and_store_cpu_us_per_delivery": per_delivery(both, out["deliveries"]),
        "server_cpu_utilization": utilization(server, wall),
    }


def figures(scenario: str, out: dict, run: GeneratorRun) -> dict:
    if scenario in ("fanout", "rooms"):
        return {"generator": out, "measured": delivery_figures(out, run.phase("measure"))}
    if scenario == "find-max":
        steps = [delivery_figures(step, run.phase(f"step-{step['rate']:g}")) for step in out["steps"]]
        return {"generator": out, "measured": {"steps": steps}}
    # connections
    before, idle = run.marks.get("connect-start", {}), run.marks.get("idle-end", {})
    connect = run.phase("connect") or {}
    connected = run.marks.get("connect-end", {})
    overflows = None
    if before.get("listen_overflows") is not None and connected.get("listen_overflows") is not None:
        overflows = connected["listen_overflows"] - before["listen_overflows"]
    rss_before, rss_idle = before.get("server_rss_kib"), idle.get("server_rss_kib")
    grown = None if rss_before is None or rss_idle is None else rss_idle - rss_before
    return {"generator": out, "measured": {
        **connect,
        "server_rss_before_kib": rss_before, "server_rss_idle_kib": rss_idle,
        "store_rss_before_kib": before.get("store_rss_kib"), "store_rss_idle_kib": idle.get("store_rss_kib"),
        "kib_per_idle_connection": None if grown is None or not out["opened"] else round(grown / out["opened"], 2),
        "server_cpu_us_per_handshake": per_delivery(connect.get("server_cpu_s"), out["opened"]),
        "server_and_store_cpu_us_per_handshake": per_delivery(
            None if connect.get("server_cpu_s") is None else connect["server_cpu_s"] + (connect.get("store_cpu_s") or 0.0),
            out["opened"]),
        # A full accept queue drops the SYN and the client retries after 1 s: it shows as p99 > 1000 ms.
        "listen_overflows": overflows,
    }}


def run_scenario(target: str, scenario: str, args: argparse.Namespace) -> dict:
    secret = secrets.token_hex(24)
    server = SERVERS[target](secret)
    try:
        log(f"{target}: starting for {scenario} on port {server.port}")
        server.start()
        run = GeneratorRun(server, generator_argv(scenario, server, secret, args), args.time_limit)
        out = run.run()
        return figures(scenario, out, run)
    except Exception as e:  # one failed scenario is reported, the others still run
        log(f"{target} {scenario} failed: {e}")
        tail = server.log_tail()
        if tail:
            log(f"last lines of the {target} log:\n{tail}")
        return {"error": str(e)}
    finally:
        server.close()


# -- the table ------------------------------------------------------------------------------------


def rows(scenario: str, result: dict) -> list[tuple[str, object]]:
    """(label, value) rows for one scenario's result."""
    if "error" in result:
        return [("error", result["error"][:60])]
    out, m = result["generator"], result["measured"]
    if scenario == "find-max":
        passed = [s for s in out["steps"] if s.get("passed")]
        failed = [s for s in out["steps"] if not s.get("passed")]
        best = len(passed) - 1
        best_m = m["steps"][best] if best >= 0 else {}
        rows_ = [
            ("max msgs/s (p99<=%gms, no loss)" % out["p99_target_ms"], out["max_rate"]),
            ("max deliveries/s", out["max_deliveries_per_s"]),
            ("  p99 ms at max", passed[-1]["latency_ms"]["p99"] if passed else None),
            ("  server CPU us/delivery at max", best_m.get("server_cpu_us_per_delivery")),
            ("  server CPU util at max", best_m.get("server_cpu_utilization")),
            ("  generator CPU util at max", passed[-1]["generator_cpu"]["utilization"] if passed else None),
        ]
        if failed:
            f = failed[0]
            rows_.append(("first failing msgs/s", f["rate"]))
            rows_.append(("  its p99 ms / loss", f"{f['latency_ms']['p99']} / {f['loss']}"))
            # Near 1.0 the generator, not the server, set the limit: the max is then a lower bound.
            rows_.append(("  generator CPU util there", f["generator_cpu"]["utilization"]))
        return rows_
    if scenario == "connections":
        return [
            ("sockets opened / failed", f"{out['opened']} / {out['failures']}"),
            ("handshakes/s", out["handshakes_per_s"]),
            ("handshake p50 ms", out["handshake_ms"]["p50"]),
            ("handshake p99 ms", out["handshake_ms"]["p99"]),
            ("server RSS before MiB", mib(m["server_rss_before_kib"])),
            ("server RSS idle MiB", mib(m["server_rss_idle_kib"])),
            ("KiB per idle connection", m["kib_per_idle_connection"]),
            ("server CPU us/handshake", m["server_cpu_us_per_handshake"]),
            ("server+store CPU us/handshake", m.get("server_and_store_cpu_us_per_handshake")),
            ("listen queue overflows", m.get("listen_overflows")),
            ("server CPU util (connecting)", utilization(m.get("server_cpu_s"), m.get("wall_s"))),
            ("generator CPU util (connecting)", utilization(m.get("generator_cpu_s"), m.get("wall_s"))),
        ]
    lat = out["latency_ms"]
    return [
        ("msgs/s sent", out["rate"]),
        ("deliveries/s", out["deliveries_per_s"]),
        ("latency p50 ms", lat["p50"]),
        ("latency p99 ms", lat["p99"]),
        ("latency max ms", lat["max"]),
        ("loss", out["loss"]),
        ("acks / sent", f"{out['acks']} / {out['sent']}"),
        # Each socket checks its room's seqs: a skipped one, or one at or below one already seen.
        ("seq gaps / out of order", f"{out['gaps']} / {out['out_of_order']}"),
        ("server CPU s", m.get("server_cpu_s")),
        ("store CPU s", m.get("store_cpu_s")),
        ("generator CPU s", m.get("generator_cpu_s")),
        ("server CPU us/delivery", m["server_cpu_us_per_delivery"]),
        ("server+store CPU us/delivery", m["server_and_store_cpu_us_per_delivery"]),
        ("server CPU util", m["server_cpu_utilization"]),
        ("generator CPU util", utilization(m.get("generator_cpu_s"), m.get("wall_s"))),
    ]


def utilization(cpu: float | None, wall: float | None) -> float | None:
    """CPU seconds per wall second: 1.0 is one core busy all the time."""
    return None if cpu is None or not wall else round(cpu / wall, 3)


def mib(kib: int | None) -> float | None:
    return None if kib is None else round(kib / 1024, 1)


def cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def ratio(a: object, b: object) -> str:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and b:
        return f"{a / b:.2f}"
    return ""


def median(values: list) -> object:
    """The median of the numbers in ``values`` (anything else: the first value)."""
    numbers = sorted(v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool))
    if len(numbers) != len(values) or not numbers:
        return values[0] if values else None
    middle = len(numbers) // 2
    return numbers[middle] if len(numbers) % 2 else (numbers[middle - 1] + numbers[middle]) / 2


def print_table(targets: list[str], results: dict) -> None:
    """One row per figure; with several runs, each cell is the median and the last columns every run's ratio.

    With chatd and Node peers in the run, a chatd/<peer> column per peer (of the medians), and
    with several runs one more per peer with each run's own ratio.
    """
    peers = [t for t in targets if t != "chatd"] if "chatd" in targets else []
    runs = len(next(iter(results[targets[0]].values())))
    header = ["scenario / figure"] + targets + [f"chatd/{peer}" for peer in peers]
    if peers and runs > 1:
        header += [f"each of {runs} runs" if len(peers) == 1 else f"chatd/{peer}, each of {runs} runs" for peer in peers]
    lines = [header]
    for scenario in results[targets[0]]:
        lines.append([f"[{scenario}]"] + [""] * (len(header) - 1))
        tables = {t: [dict(rows(scenario, run)) for run in results[t][scenario]] for t in targets}
        labels = list(dict.fromkeys(label for t in targets for table in tables[t] for label in table))
        for label in labels:
            per_run = {t: [table.get(label) for table in tables[t]] for t in targets}
            values = [median(per_run[t]) for t in targets]
            line = [label] + [cell(v) for v in values]
            chatd = values[targets.index("chatd")] if peers else None
            line += [ratio(chatd, values[targets.index(peer)]) for peer in peers]
            if runs > 1:
                line += [" ".join(filter(None, (ratio(c, n) for n, c in zip(per_run[peer], per_run["chatd"]))))
                         for peer in peers]
            lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(text.ljust(w) if i == 0 else text.rjust(w) for i, (text, w) in enumerate(zip(line, widths))))


# -- main -----------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", choices=("chatd", "node", "node-mongo", "both", "all"), default="both",
                        help="both: node and chatd; all: node, node-mongo and chatd (default both)")
    parser.add_argument("--scenario", choices=SCENARIOS + ("all",), default="all")
    parser.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="run each scenario N times per target, alternating targets; the table shows medians")
    parser.add_argument("--time-limit", type=float, default=900, help="seconds per generator run (default 900)")
    parser.add_argument("--chatd-backlog", type=int, help="listen backlog for chatd (appended to --listen as backlog=N)")
    for name, kind in GENERATOR_OPTIONS.items():
        parser.add_argument(f"--{name}", type=kind, help="passed to load.js (see its defaults)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    # A SIGTERM unwinds through the finally blocks, so the servers are stopped and the dirs removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ChatdServer.backlog = args.chatd_backlog
    targets = TARGETS.get(args.target, [args.target])
    ensure_node_modules(targets)
    scenarios = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    # Each scenario's runs alternate between the targets, so a drift of the machine's speed
    # (it happens here, by ±15% over minutes) weighs on both alike.
    results: dict = {target: {scenario: [] for scenario in scenarios} for target in targets}
    for scenario in scenarios:
        for _ in range(args.repeat):
            for target in targets:
                results[target][scenario].append(run_scenario(target, scenario, args))
    print_table(targets, results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        log(f"every figure written to {args.json}")
    return 0 if all("error" not in run for t in results.values() for runs in t.values() for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
