"""Can a few client addresses flooding logins starve everyone else's login? (issue 9, finding 1)

Starts ``twistd -n chatd`` with its defaults (bcrypt cost 12, ``--auth-rate 5/s,20``) from a
checkout, registers one user, then, round after round: ``--attackers`` loopback addresses
(127.0.0.2, 127.0.0.3, ...) each send ``--burst`` logins with wrong passwords at once, and while
they are being hashed a legitimate user logs in from 127.0.0.200. Reports, per round, how long
that login took and what it was answered, and what the attackers were answered. Loopback only,
bounded, standard library only.

    python bench/login_fairness.py                       # this checkout
    python bench/login_fairness.py --checkout /tmp/old   # another one (an older commit, say)
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchserver import ServerProcess, free_port  # noqa: E402

HERE = Path(__file__).resolve().parent.parent


def login(port: int, source: str, username: str, password: str) -> tuple[int, float]:
    """POST /api/auth/login from ``source``; (status, seconds)."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120, source_address=(source, 0))
    try:
        body = json.dumps({"username": username, "password": password}).encode()
        conn.request("POST", "/api/auth/login", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    except OSError:
        return 0, time.monotonic() - started
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", default=str(HERE), help="the chatd checkout to run (default: this one)")
    parser.add_argument("--attackers", type=int, default=13, help="flooding addresses (default 13)")
    parser.add_argument("--burst", type=int, default=20, help="logins each sends at once (default 20)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    tmp = tempfile.mkdtemp(prefix="chatd-login-fairness-")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATD_")}
    env["PYTHONPATH"] = args.checkout
    twistd = str(Path(sys.executable).with_name("twistd"))
    server = ServerProcess([twistd, "-n", "--pidfile=", "chatd", "--data-dir", f"{tmp}/data",
                            "--listen", f"tcp:{port}:interface=127.0.0.1"],
                           port=port, log_path=Path(tmp) / "twistd.out", env=env, cwd=args.checkout, name="chatd")
    try:
        server.start()
        server.wait_healthy(60)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        body = json.dumps({"username": "owner", "email": "owner@example.com", "password": "the right password"})
        conn.request("POST", "/api/auth/register", body=body, headers={"Content-Type": "application/json"})
        assert conn.getresponse().status == 201
        conn.close()
        sources = [f"127.0.0.{2 + n}" for n in range(args.attackers)]
        waits = []
        with ThreadPoolExecutor(max_workers=args.attackers * args.burst + 1) as pool:
            for round in range(1, args.rounds + 1):
                flood = [pool.submit(login, port, source, f"victim{n}", "a wrong guess")
                         for source in sources for n in range(args.burst)]
                time.sleep(0.3)  # the flood is queued
                status, took = login(port, "127.0.0.200", "owner", "the right password")
                answers = collections.Counter(f.result()[0] for f in flood)
                waits.append(took)
                print(f"round {round}: the owner's login {status} in {took:.2f} s; the flood's "
                      f"{sum(answers.values())} logins: {dict(sorted(answers.items()))}", flush=True)
                time.sleep(5)  # the addresses' budgets refill
        print(f"median owner's login: {statistics.median(waits):.2f} s over {args.rounds} rounds")
    finally:
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
