#!/usr/bin/env python3
"""Benchmark: 20 concurrent logins do not stall chatd (issue 2).

Run by hand (it is not a test):

    source .venv/bin/activate
    python bench/login_stall.py            # starts its own chatd, 5 rounds
    python bench/login_stall.py --json     # the same, JSON on stdout

By default it starts its own server as a subprocess,

    twistd -n --pidfile= chatd --data-dir <tmpdir> --listen tcp:<port>:interface=127.0.0.1 --auth-rate 0

with the embedded store and the real bcrypt cost (the default, 12), waits for
GET /healthz to answer 200, registers 20 users (untimed), measures a baseline
of sequential /healthz probes with nothing else running, and then for each round
fires 20 concurrent POST /api/auth/login while one prober sends GET /healthz
back-to-back (one at a time, each timed) for the whole burst.

The target: /healthz p99 < 50 ms while the logins run. The verdict (PASS/FAIL)
is printed; the exit status is 0 unless the server could not be started.

Only the standard library is used: http.client in threads (20 logins at once
is small; the client is not the bottleneck). Everything talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchserver import ServerProcess, ServerStartError, children_of, cpu_seconds, free_port  # bench/benchserver.py: the script's directory is on sys.path

TARGET_P99_MS = 50.0
DEFAULT_BCRYPT_COST = 12  # chatd's default; the self-started server is not given --bcrypt-cost
PASSWORD = "bench-password-123"
MAX_PROBES_PER_BURST = 200_000  # a bound on the prober loop, far above what a burst allows


class TimeLimit(Exception):
    """The overall time limit was reached."""


# -- small helpers ------------------------------------------------------------


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100), at least 1
    return ordered[int(rank) - 1]


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def check(self) -> None:
        if self.left() <= 0:
            raise TimeLimit()

    def timeout(self, cap: float = 30.0) -> float:
        """A socket timeout that never runs past the deadline."""
        self.check()
        return max(0.5, min(cap, self.left()))


# -- HTTP ---------------------------------------------------------------------


class Target:
    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost"):
            raise SystemExit(f"--url must be http://127.0.0.1:<port> (got {url!r})")
        self.host = "127.0.0.1"
        self.port = parts.port or 80
        self.url = f"http://{self.host}:{self.port}"

    def connection(self, timeout: float) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method: str, path: str, body: dict | None, timeout: float) -> tuple[int, bytes]:
        conn = self.connection(timeout)
        try:
            return send(conn, method, path, body)
        finally:
            conn.close()


def send(conn: http.client.HTTPConnection, method: str, path: str, body: dict | None) -> tuple[int, bytes]:
    headers = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


# -- the server we start ------------------------------------------------------


def twistd_command() -> list[str]:
    beside = Path(sys.executable).with_name("twistd")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("twistd")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from twisted.scripts.twistd import run; sys.exit(run())"]


class OwnServer:
    """``twistd -n chatd`` in a temp dir; always stopped and removed by ``close``."""

    def __init__(self, startup_timeout: float) -> None:
        self.tmp = tempfile.mkdtemp(prefix="chatd-login-stall-")
        self.port = free_port()
        self.startup_timeout = startup_timeout
        self.argv = twistd_command() + [
            "-n", "--pidfile=", "chatd",
            "--data-dir", str(Path(self.tmp) / "data"),
            "--listen", f"tcp:{self.port}:interface=127.0.0.1",
            "--auth-rate", "0",
        ]
        # Every option comes from the command line: no CHATD_* variable may change a default
        # (in particular CHATD_BCRYPT_COST).
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATD_")}
        self.server = ServerProcess(
            self.argv, port=self.port, log_path=Path(self.tmp) / "twistd.out", env=env, cwd=self.tmp,
            name="chatd", tail_lines=30,
        )

    @property
    def process(self) -> subprocess.Popen | None:
        return self.server.popen

    def start(self, target_factory) -> "Target":
        """Start chatd and wait for /healthz; raises ServerStartError."""
        self.server.start()
        self.server.wait_healthy(self.startup_timeout)
        return target_factory(f"http://127.0.0.1:{self.port}")

    def close(self) -> None:
        try:
            self.server.close()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


# -- the measurements ---------------------------------------------------------


class CpuMeter:
    """CPU seconds of the chatd process (and of its children, i.e. the embedded store)."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid

    def sample(self) -> dict | None:
        if self.pid is None:
            return None
        own = cpu_seconds(self.pid)
        if own is None:
            return None
        kids = {child: cpu_seconds(child) for child in children_of(self.pid)}
        return {"chatd": own, "children": {k: v for k, v in kids.items() if v is not None}}

    @staticmethod
    def delta(before: dict | None, after: dict | None) -> dict | None:
        if before is None or after is None:
            return None
        kids = sum(after["children"][k] - before["children"].get(k, 0.0) for k in after["children"])
        return {"chatd": after["chatd"] - before["chatd"], "children": kids}


class Prober:
    """One thread sending GET /healthz back-to-back on a keep-alive connection until stopped."""

    def __init__(self, target: Target, deadline: Deadline, fresh_connections: bool) -> None:
        self.target = target
        self.deadline = deadline
        self.fresh = fresh_connections
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self, count: int | None = None) -> None:
        """Probe until ``stop()`` (or ``count`` probes, or the deadline)."""
        conn = None
        try:
            for _ in range(count if count is not None else MAX_PROBES_PER_BURST):
                if self._stop.is_set() or self.deadline.left() <= 0:
                    break
                if conn is None:
                    conn = self.target.connection(self.deadline.timeout(10.0))
                    conn.connect()  # a (re)connect is not part of a probe's time, unless --fresh-connections
                start = time.perf_counter()
                try:
                    if self.fresh:
                        conn.close()
                        conn = self.target.connection(self.deadline.timeout(10.0))
                    status, _ = send(conn, "GET", "/healthz", None)
                    if status != 200:
                        self.errors.append(f"HTTP {status}")
                except (OSError, http.client.HTTPException) as e:
                    self.errors.append(type(e).__name__)
                    conn.close()
                    conn = None
                self.latencies.append((time.perf_counter() - start) * 1000.0)
        finally:
            if conn is not None:
                conn.close()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="healthz-prober", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(1.0, self.deadline.left()) + 15)


def register_users(target: Target, names: list[str], deadline: Deadline) -> None:
    def one(name: str) -> None:
        body = {"username": name, "email": f"{name}@bench.example", "password": PASSWORD}
        status, data = target.request("POST", "/api/auth/register", body, deadline.timeout(60.0))
        if status != 201:
            raise RuntimeError(f"register {name}: HTTP {status} {data[:300]!r}")

    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        for future in [pool.submit(one, n) for n in names]:
            future.result()


def login_burst(target: Target, names: list[str], pool: ThreadPoolExecutor, deadline: Deadline) -> tuple[list[float], list[str], float]:
    """All logins connect first, then wait at a barrier and send at once. Returns latencies, errors, wall time."""
    barrier = threading.Barrier(len(names) + 1)

    def one(name: str) -> tuple[float | None, str | None]:
        conn = target.connection(deadline.timeout(60.0))
        try:
            conn.connect()
            barrier.wait(timeout=30)
            start = time.perf_counter()
            status, data = send(conn, "POST", "/api/auth/login", {"username": name, "password": PASSWORD})
            elapsed = (time.perf_counter() - start) * 1000.0
            if status != 200:
                return elapsed, f"HTTP {status} {data[:120]!r}"
            return elapsed, None
        except (OSError, http.client.HTTPException, threading.BrokenBarrierError) as e:
            return None, type(e).__name__
        finally:
            conn.close()

    futures = [pool.submit(one, n) for n in names]
    barrier.wait(timeout=30)
    start = time.perf_counter()
    results = [f.result() for f in futures]
    wall = time.perf_counter() - start
    latencies = [r[0] for r in results if r[0] is not None and r[1] is None]
    errors = [r[1] for r in results if r[1] is not None]
    return latencies, errors, wall


def measure(args, target: Target, server_pid: int | None, deadline: Deadline) -> dict:
    tag = uuid.uuid4().hex[:6]
    names = [f"bench_{tag}_{i:02d}" for i in range(args.users)]
    cpu = CpuMeter(server_pid)
    result: dict = {
        "target": target.url,
        "users": args.users,
        "rounds": args.rounds,
        "rounds_done": 0,
        "bcrypt_cost": args.bcrypt_cost,
        "probe_connections": "fresh per probe" if args.fresh_connections else "keep-alive",
        "complete": False,
    }
    try:
        log(f"registering {len(names)} users (untimed) ...")
        register_users(target, names, deadline)

        probes_during: list[float] = []
        probe_errors: list[str] = []
        logins: list[float] = []
        login_errors: list[str] = []
        login_wall = 0.0
        cpu_before = cpu.sample()
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            for round_no in range(1, args.rounds + 1):
                deadline.check()
                prober = Prober(target, deadline, args.fresh_connections)
                prober.start()
                try:
                    lat, errs, wall = login_burst(target, names, pool, deadline)
                finally:
                    prober.stop()
                logins += lat
                login_errors += errs
                login_wall += wall
                probes_during += prober.latencies
                probe_errors += prober.errors
                result["rounds_done"] = round_no
                log(
                    f"round {round_no}/{args.rounds}: {len(lat)} logins in {wall:.2f} s, "
                    f"{len(prober.latencies)} probes, healthz p99 {fmt_ms(percentile(prober.latencies, 99))} ms, "
                    f"max {fmt_ms(max(prober.latencies, default=None))} ms"
                    + (f", {len(errs)} login errors: {sorted(set(errs))}" if errs else "")
                )
        cpu_logins = CpuMeter.delta(cpu_before, cpu.sample())

        result["during_logins"] = {
            "healthz_probes": len(probes_during),
            "healthz_errors": len(probe_errors),
            "healthz_p50_ms": percentile(probes_during, 50),
            "healthz_p90_ms": percentile(probes_during, 90),
            "healthz_p99_ms": percentile(probes_during, 99),
            "healthz_max_ms": max(probes_during, default=None),
            "logins": len(logins),
            "login_errors": len(login_errors),
            "login_error_kinds": sorted(set(login_errors)),
            "login_p50_ms": percentile(logins, 50),
            "login_p99_ms": percentile(logins, 99),
            "login_max_ms": max(logins, default=None),
            "login_wall_s": login_wall,
            "logins_per_s": len(logins) / login_wall if login_wall > 0 else None,
            "chatd_cpu_s": cpu_logins["chatd"] if cpu_logins else None,
            "store_cpu_s": cpu_logins["children"] if cpu_logins else None,
        }

        # The baseline: as many sequential probes, nothing else running.
        log(f"baseline: {len(probes_during)} sequential /healthz probes with no logins ...")
        cpu_before = cpu.sample()
        prober = Prober(target, deadline, args.fresh_connections)
        base_start = time.perf_counter()
        prober.run(count=max(1, len(probes_during)))
        base_wall = time.perf_counter() - base_start
        cpu_base = CpuMeter.delta(cpu_before, cpu.sample())
        result["baseline"] = {
            "healthz_probes": len(prober.latencies),
            "healthz_errors": len(prober.errors),
            "healthz_p50_ms": percentile(prober.latencies, 50),
            "healthz_p90_ms": percentile(prober.latencies, 90),
            "healthz_p99_ms": percentile(prober.latencies, 99),
            "healthz_max_ms": max(prober.latencies, default=None),
            "wall_s": base_wall,
            "chatd_cpu_s": cpu_base["chatd"] if cpu_base else None,
            "store_cpu_s": cpu_base["children"] if cpu_base else None,
        }
        result["complete"] = result["rounds_done"] == args.rounds
    except TimeLimit:
        result["note"] = f"the overall time limit ({args.time_limit:.0f} s) was reached; figures are partial"
    except (RuntimeError, OSError, http.client.HTTPException) as e:
        result["note"] = f"stopped early: {e}"
    return result


def verdict(result: dict) -> tuple[str, str]:
    """("PASS" or "FAIL", why)."""
    during = result.get("during_logins") or {}
    p99 = during.get("healthz_p99_ms")
    if not result.get("complete") or p99 is None:
        return "FAIL", "the run did not complete"
    if during.get("login_errors") or during.get("healthz_errors"):
        return "FAIL", (
            f"{during.get('login_errors')} login and {during.get('healthz_errors')} healthz errors "
            "(429 means the server's --auth-rate is not 0)"
        )
    if p99 >= TARGET_P99_MS:
        return "FAIL", f"healthz p99 {p99:.1f} ms >= {TARGET_P99_MS:.0f} ms"
    return "PASS", f"healthz p99 {p99:.1f} ms < {TARGET_P99_MS:.0f} ms"


def table(result: dict) -> str:
    d = result.get("during_logins") or {}
    b = result.get("baseline") or {}

    def cpu(section: dict) -> str:
        if section.get("chatd_cpu_s") is None:
            return "- (unknown pid)"
        return f"{section['chatd_cpu_s']:.2f} (+ store {section['store_cpu_s']:.2f})"

    rows = [
        ("", "during logins", "baseline (no logins)"),
        ("healthz probes", str(d.get("healthz_probes", "-")), str(b.get("healthz_probes", "-"))),
        ("healthz errors", str(d.get("healthz_errors", "-")), str(b.get("healthz_errors", "-"))),
        ("healthz p50 ms", fmt_ms(d.get("healthz_p50_ms")), fmt_ms(b.get("healthz_p50_ms"))),
        ("healthz p90 ms", fmt_ms(d.get("healthz_p90_ms")), fmt_ms(b.get("healthz_p90_ms"))),
        ("healthz p99 ms", fmt_ms(d.get("healthz_p99_ms")), fmt_ms(b.get("healthz_p99_ms"))),
        ("healthz max ms", fmt_ms(d.get("healthz_max_ms")), fmt_ms(b.get("healthz_max_ms"))),
        ("logins (errors)", f"{d.get('logins', '-')} ({d.get('login_errors', '-')})", ""),
        ("login p50 ms", fmt_ms(d.get("login_p50_ms")), ""),
        ("login p99 ms", fmt_ms(d.get("login_p99_ms")), ""),
        ("login max ms", fmt_ms(d.get("login_max_ms")), ""),
        ("logins/s", "-" if d.get("logins_per_s") is None else f"{d['logins_per_s']:.2f}", ""),
        ("wall s", "-" if d.get("login_wall_s") is None else f"{d['login_wall_s']:.2f}",
         "-" if b.get("wall_s") is None else f"{b['wall_s']:.2f}"),
        ("chatd CPU s", cpu(d) if d else "-", cpu(b) if b else "-"),
    ]
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = [
        f"target {result['target']}, bcrypt cost {result['bcrypt_cost']}, {result['users']} concurrent logins "
        f"x {result['rounds_done']}/{result['rounds']} rounds, healthz probes {result['probe_connections']}",
    ]
    lines += [f"  {a:<{w0}}  {b_:>{w1}}  {c:>20}" for a, b_, c in rows]
    if d.get("login_error_kinds"):
        lines.append(f"  login errors: {d['login_error_kinds']}")
    if result.get("note"):
        lines.append(f"  NOTE: {result['note']}")
    return "\n".join(lines)


def log(message: str) -> None:
    print(f"[login_stall] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(
            "Shows that 20 concurrent logins do not stall chatd: GET /healthz is probed back-to-back while "
            "bursts of concurrent POST /api/auth/login run, and compared with a baseline without logins. "
            f"Target: healthz p99 < {TARGET_P99_MS:.0f} ms during logins. By default it starts its own "
            "chatd (embedded store, bcrypt cost 12, --auth-rate 0) on a free loopback port and removes it "
            "afterwards. Exit status 0 unless the server failed to start."
        )
    )
    parser.add_argument(
        "--url",
        help=(
            "target an already-running chatd at http://127.0.0.1:<port> instead of starting one. That server "
            "must run with --auth-rate 0 (or CHATD_AUTH_RATE=0): otherwise its login rate limiter answers "
            "429 to most of the burst. 20 users named bench_<random>_NN are registered on it."
        ),
    )
    parser.add_argument("--rounds", type=int, default=5, help="login bursts (default 5)")
    parser.add_argument("--users", type=int, default=20, help="concurrent logins per burst (default 20)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    parser.add_argument("--time-limit", type=float, default=120.0, help="overall limit in seconds (default 120)")
    parser.add_argument("--startup-timeout", type=float, default=30.0, help="wait for /healthz 200 (default 30 s)")
    parser.add_argument(
        "--server-pid", type=int,
        help="with --url: the chatd process id, to report its CPU seconds (otherwise unknown)",
    )
    parser.add_argument(
        "--bcrypt-cost", type=int, default=None,
        help="with --url: the cost the server runs with, for the report only (a started server always uses 12)",
    )
    parser.add_argument(
        "--fresh-connections", action="store_true",
        help="open a new TCP connection for every /healthz probe (timed) instead of one keep-alive connection",
    )
    args = parser.parse_args(argv)
    if not (1 <= args.rounds <= 100) or not (1 <= args.users <= 200):
        parser.error("--rounds must be 1..100 and --users 1..200")

    deadline = Deadline(args.time_limit)
    server = None
    try:
        if args.url:
            target = Target(args.url)
            server_pid = args.server_pid
            args.bcrypt_cost = args.bcrypt_cost if args.bcrypt_cost is not None else "unknown"
            status, body = target.request("GET", "/healthz", None, timeout=5.0)
            if status != 200:
                log(f"warning: {target.url}/healthz answered {status} {body[:200]!r}")
        else:
            if args.server_pid or args.bcrypt_cost is not None:
                parser.error("--server-pid and --bcrypt-cost only apply with --url")
            args.bcrypt_cost = DEFAULT_BCRYPT_COST
            server = OwnServer(min(args.startup_timeout, args.time_limit))
            log(f"starting: {' '.join(server.argv)}")
            try:
                target = server.start(Target)
            except ServerStartError as e:
                log(f"the server failed to start: {e}")
                return 1
            server_pid = server.process.pid
            log(f"chatd is up at {target.url} (pid {server_pid})")

        result = measure(args, target, server_pid, deadline)
        result["machine"] = {
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        }
        result["target_healthz_p99_ms"] = TARGET_P99_MS
        result["verdict"], result["verdict_reason"] = verdict(result)
        if server is not None and server.process.poll() is not None:
            result["note"] = (result.get("note", "") + f" chatd exited during the run ({server.process.returncode})").strip()
        if args.json:
            print(json.dumps(result, indent=2))
            print(f"{result['verdict']}: {result['verdict_reason']}", file=sys.stderr)
        else:
            print(table(result))
            print(
                f"{result['verdict']}: healthz p99 during logins "
                f"{fmt_ms((result.get('during_logins') or {}).get('healthz_p99_ms'))} ms "
                f"(target < {TARGET_P99_MS:.0f} ms; baseline {fmt_ms((result.get('baseline') or {}).get('healthz_p99_ms'))} ms)"
                + ("" if result["verdict"] == "PASS" else f"; {result['verdict_reason']}")
            )
        return 0
    finally:
        if server is not None:
            server.close()


if __name__ == "__main__":
    sys.exit(main())
