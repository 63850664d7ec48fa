"""One run of the load generator (bench/ws-load/load.js) against a target, sampled at its marks, and its figures.

load.js prints "@@mark <phase>-start/-end" on stderr; at each mark ``GeneratorRun`` reads, from
/proc, the CPU seconds (utime+stime) of every process of the target by role (server: every chatd
process or the Node peer; store: nx-27017; bus: redis-server or the embedded valkey-server), of
the generator, and the servers' resident memory. ``figures`` turns a phase into CPU µs per
delivery (server alone, and everything: server + store + bus) and utilizations (1.0 = one core).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchserver import cpu_seconds, status_kib
from wsbench_targets import Server

LOAD_DIR = Path(__file__).resolve().parent / "ws-load"
# Generator options ws_bench.py passes through when given (name -> type).
GENERATOR_OPTIONS = {
    "receivers": int, "senders": int, "rate": float, "duration": float, "step-duration": float,
    "max-rate": float, "rooms": int, "members": int, "connections": int, "wave": int,
    "settle": float, "drain": float, "text-size": int, "revocations": int, "revoke-rate": float,
    "mention-pct": float, "reply-pct": float,
}
ROLES = ("server", "store", "bus")


def log(text: str) -> None:
    print(f"[ws_bench] {text}", file=sys.stderr, flush=True)


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


def total(values: list) -> float | None:
    """The sum of the readings, None when there is none (a role the target does not have)."""
    present = [v for v in values if v is not None]
    return sum(present) if present else None


class GeneratorRun:
    """Runs load.js; at every "@@mark <name>" line samples CPU and memory into ``marks[name]``."""

    def __init__(self, server: Server, argv: list[str], time_limit: float) -> None:
        self.server = server
        self.argv = argv
        self.time_limit = time_limit
        self.marks: dict[str, dict] = {}

    def sample(self, generator_pid: int) -> dict:
        found = self.server.processes()  # walked again at each mark: a worker restarted is still counted
        reading = {"t": time.monotonic(), "generator_cpu": cpu_seconds(generator_pid),
                   "listen_overflows": listen_overflows(), "pids": found}
        for role in ROLES:
            reading[f"{role}_cpu"] = total([cpu_seconds(pid) for pid in found[role]])
            reading[f"{role}_rss_kib"] = total([status_kib(pid) for pid in found[role]])
        reading["per_pid_cpu"] = {pid: cpu_seconds(pid) for pids in found.values() for pid in pids}
        return reading

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
        """CPU seconds used between "<name>-start" and "<name>-end" by role, and the wall time.

        A process counts when it is there at both marks (one that came or went between them is
        left out: its CPU cannot be split at the marks).
        """
        start, end = self.marks.get(f"{name}-start"), self.marks.get(f"{name}-end")
        if not start or not end:
            return None
        result = {"wall_s": round(end["t"] - start["t"], 3)}
        for role in ROLES:
            pids = [pid for pid in end["pids"][role] if pid in start["per_pid_cpu"]]
            deltas = [end["per_pid_cpu"][pid] - start["per_pid_cpu"][pid] for pid in pids
                      if end["per_pid_cpu"].get(pid) is not None and start["per_pid_cpu"][pid] is not None]
            result[f"{role}_cpu_s"] = round(sum(deltas), 3) if deltas else None
            result[f"{role}_processes"] = len(pids)
        g0, g1 = start["generator_cpu"], end["generator_cpu"]
        result["generator_cpu_s"] = None if g0 is None or g1 is None else round(g1 - g0, 3)
        return result


def generator_argv(scenario: str, server: Server, secret: str, args: argparse.Namespace) -> list[str]:
    argv = ["node", str(LOAD_DIR / "load.js"), "--url", ",".join(server.urls), "--secret", secret,
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


def per_unit(cpu: float | None, count: int) -> float | None:
    return None if cpu is None or not count else round(cpu / count * 1e6, 2)


def utilization(cpu: float | None, wall: float | None) -> float | None:
    """CPU seconds per wall second: 1.0 is one core busy all the time."""
    return None if cpu is None or not wall else round(cpu / wall, 3)


def everything(phase: dict) -> float | None:
    """server + store + bus CPU seconds of a phase."""
    return total([phase.get(f"{role}_cpu_s") for role in ROLES])


def delivery_figures(out: dict, phase: dict | None) -> dict:
    """Figures of one measured message phase (fanout, rooms, a find-max step)."""
    phase = phase or {}
    server, store = phase.get("server_cpu_s"), phase.get("store_cpu_s")
    wall = phase.get("wall_s")
    return {
        **phase,
        "server_cpu_us_per_delivery": per_unit(server, out["deliveries"]),
        "server_and_store_cpu_us_per_delivery": per_unit(total([server, store]) if server is not None else None,
                                                         out["deliveries"]),
        "all_cpu_us_per_delivery": per_unit(everything(phase), out["deliveries"]),
        "server_cpu_utilization": utilization(server, wall),
        "all_cpu_utilization": utilization(everything(phase), wall),
        "generator_cpu_utilization": utilization(phase.get("generator_cpu_s"), wall),
    }


def connection_figures(out: dict, run: GeneratorRun) -> dict:
    before, idle = run.marks.get("connect-start", {}), run.marks.get("idle-end", {})
    connect = run.phase("connect") or {}
    connected = run.marks.get("connect-end", {})
    overflows = None
    if before.get("listen_overflows") is not None and connected.get("listen_overflows") is not None:
        overflows = connected["listen_overflows"] - before["listen_overflows"]
    rss_before, rss_idle = before.get("server_rss_kib"), idle.get("server_rss_kib")
    grown = None if rss_before is None or rss_idle is None else rss_idle - rss_before
    server = connect.get("server_cpu_s")
    return {
        **connect,
        "server_rss_before_kib": rss_before, "server_rss_idle_kib": rss_idle,
        "store_rss_before_kib": before.get("store_rss_kib"), "store_rss_idle_kib": idle.get("store_rss_kib"),
        "kib_per_idle_connection": None if grown is None or not out["opened"] else round(grown / out["opened"], 2),
        "server_cpu_us_per_handshake": per_unit(server, out["opened"]),
        "server_and_store_cpu_us_per_handshake": per_unit(
            None if server is None else server + (connect.get("store_cpu_s") or 0.0), out["opened"]),
        "all_cpu_us_per_handshake": per_unit(everything(connect), out["opened"]),
        # A full accept queue drops the SYN and the client retries after 1 s: it shows as p99 > 1000 ms.
        "listen_overflows": overflows,
        "server_cpu_utilization": utilization(server, connect.get("wall_s")),
        "all_cpu_utilization": utilization(everything(connect), connect.get("wall_s")),
        "generator_cpu_utilization": utilization(connect.get("generator_cpu_s"), connect.get("wall_s")),
    }


def figures(scenario: str, out: dict, run: GeneratorRun) -> dict:
    if scenario in ("fanout", "rooms"):
        return {"generator": out, "measured": delivery_figures(out, run.phase("measure"))}
    if scenario == "find-max":
        steps = [delivery_figures(step, run.phase(f"step-{step['rate']:g}")) for step in out["steps"]]
        return {"generator": out, "measured": {"steps": steps}}
    if scenario == "revoke":
        phase = run.phase("revoke") or {}
        wall = phase.get("wall_s")
        return {"generator": out, "measured": {
            **phase,
            "all_cpu_utilization": utilization(everything(phase), wall),
            "generator_cpu_utilization": utilization(phase.get("generator_cpu_s"), wall),
        }}
    return {"generator": out, "measured": connection_figures(out, run)}
