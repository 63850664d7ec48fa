#!/usr/bin/env python3
"""WebSocket benchmark: chatd (one process, two nodes, --workers 2) against two Node.js peers, the same load.

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
    python bench/ws_bench.py --target scale --scenario fanout   # chatd, chatd-2nodes, chatd-workers2, node
    python bench/ws_bench.py --target chatd-2nodes,chatd-workers2 --scenario revoke
    python bench/ws_bench.py --target cost --scenario fanout,rooms --mention-pct 20 --reply-pct 10

Targets (bench/wsbench_targets.py): chatd (one process), chatd-2nodes (two chatd processes on one
nx-27017 and one redis-server; the generator spreads sockets, room members and senders over both
and also reports the latency of the deliveries that crossed nodes), chatd-workers2 (--workers 2:
one port, the embedded bus), chatd-base (chatd at an earlier commit, CHATD_BENCH_BASE, default the
last one before issue 13: what a feature costs), node, node-mongo; shorthands both, all, scale,
cost (chatd-base, chatd, node); chatd@<rev> (chatd at any commit, several allowed); or a
comma-separated list. --mention-pct and --reply-pct make that
share of the messages mention a room mate or reply in a thread.

For each target and scenario a fresh server is started on a free 127.0.0.1 port (chatd with
its embedded store in a temp dir; node-mongo with an nx-27017 store of its own, run as chatd
runs it), the load generator bench/ws-load/load.js runs the scenario, and everything is stopped
and removed afterwards. The generator prints "@@mark <name>" lines on stderr when a measured
phase starts and ends; at each mark (bench/wsbench_run.py) the CPU seconds (utime+stime) of every
process of the target are read from /proc by role: server (every chatd process, parent and
workers, or the Node peer), store (nx-27017), bus (redis-server, the embedded valkey-server); and
the generator's, and the servers' resident memory. From those:

    CPU µs per delivery   = server CPU seconds in the phase / message frames delivered * 1e6
                            ("server+store": the store's added; "all": store and bus added)
    KiB per idle socket   = (server RSS with the sockets open - RSS before) / sockets opened

Scenarios: fanout (R receivers + S senders in one room, a fixed rate), find-max (fanout with the
rate stepped up until p99 > 100 ms or a message is lost), rooms (200 rooms x 5 members, every
member sends), connections (N sockets opened in waves, then left idle), revoke (sockets on the
last node, each token logged out through the first: logout -> close 4001; chatd targets only).
The table (bench/wsbench_report.py) has ratios of each scaled chatd over one chatd and of chatd over
each Node peer. Only the standard library
is used; the Node packages are installed with `npm ci` when node_modules is missing.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

# The modules beside this script (its directory is on sys.path when run as python bench/ws_bench.py).
from wsbench_report import print_table
from wsbench_run import GENERATOR_OPTIONS, LOAD_DIR, GeneratorRun, figures, generator_argv, log
from wsbench_target_base import ChatdBase, at_commit
from wsbench_targets import PEERS, REPO, SERVERS, TARGETS, ChatdServer

SERVERS = {**SERVERS, ChatdBase.name: ChatdBase}

SCENARIOS = ("fanout", "find-max", "rooms", "connections", "revoke")
DEFAULT_SCENARIOS = ("fanout", "find-max", "rooms", "connections")  # "all"; revoke when named


def ensure_node_modules(targets: list[str]) -> None:
    for directory in [LOAD_DIR] + [PEERS[t] for t in targets if t in PEERS]:
        if (directory / "node_modules").is_dir():
            continue
        command = ["npm", "ci"] if (directory / "package-lock.json").exists() else ["npm", "install"]
        log(f"{' '.join(command)} in {directory.relative_to(REPO)}")
        subprocess.run(command + ["--no-audit", "--no-fund"], cwd=directory, check=True, timeout=600,
                       stdout=subprocess.DEVNULL)


def run_scenario(target: str, scenario: str, args: argparse.Namespace) -> dict:
    secret = secrets.token_hex(24)
    server = (SERVERS.get(target) or at_commit(target))(secret)
    if scenario == "revoke" and not server.revocation:
        server.close()
        return {"skipped": f"{target} does not close sockets on logout"}
    try:
        log(f"{target}: starting for {scenario} on {', '.join(server.urls)}")
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
        if args.keep_logs:
            keep_logs(server, Path(args.keep_logs) / f"{target}-{scenario}-{time.strftime('%H%M%S')}")
        server.close()


def keep_logs(server, directory: Path) -> None:
    """Copy the target's logs (chatd's, each node's, the store's, redis-server's) before its dir is removed."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in list(server.tmp.rglob("*.log")) + list(server.tmp.rglob("*.out")):
        if path.is_file():
            shutil.copy(path, directory / "_".join(path.relative_to(server.tmp).parts))


def targets_of(text: str) -> list[str]:
    names = [n for part in text.split(",") for n in TARGETS.get(part.strip(), [part.strip()])]
    unknown = [n for n in names if n not in SERVERS and not at_commit(n)]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown target {unknown[0] if unknown else text!r}; "
                                         f"known: {', '.join(list(SERVERS) + list(TARGETS))}")
    return list(dict.fromkeys(names))


def scenarios_of(text: str) -> list[str]:
    names = list(DEFAULT_SCENARIOS) if text == "all" else [n.strip() for n in text.split(",")]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown scenario {unknown[0]!r}; known: {', '.join(SCENARIOS)}, all")
    return names


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", type=targets_of, default="both",
                        help="a target or a comma-separated list: chatd, chatd-2nodes, chatd-workers2, chatd-base, "
                             "node, node-mongo; both = node,chatd; all = node,node-mongo,chatd; "
                             "scale = chatd,chatd-2nodes,chatd-workers2,node; cost = chatd-base,chatd,node "
                             "(default both)")
    parser.add_argument("--scenario", type=scenarios_of, default="all",
                        help=f"one or a comma-separated list of {', '.join(SCENARIOS)}; "
                             f"all = {','.join(DEFAULT_SCENARIOS)} (default all)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="run each scenario N times per target, alternating targets; the table shows medians")
    parser.add_argument("--time-limit", type=float, default=900, help="seconds per generator run (default 900)")
    parser.add_argument("--keep-logs", metavar="DIR", help="copy each target's logs into DIR/<target>-<scenario>-<time>/")
    parser.add_argument("--chatd-backlog", type=int, help="listen backlog for chatd (appended to --listen as backlog=N)")
    for name, kind in GENERATOR_OPTIONS.items():
        parser.add_argument(f"--{name}", type=kind, help="passed to load.js (see its defaults)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    # A SIGTERM unwinds through the finally blocks, so the servers are stopped and the dirs removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ChatdServer.backlog = args.chatd_backlog
    targets, scenarios = args.target, args.scenario
    ensure_node_modules(targets)
    # Each scenario's runs alternate between the targets, so a drift of the machine's speed
    # (it happens here, by ±15% over minutes) weighs on all alike.
    results: dict = {target: {scenario: [] for scenario in scenarios} for target in targets}
    for scenario in scenarios:
        for _ in range(args.repeat):
            for target in targets:
                results[target][scenario].append(run_scenario(target, scenario, args))
                if args.json:  # written as it goes: a run cut short keeps what it measured
                    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print_table(targets, results)
    if args.json:
        log(f"every figure written to {args.json}")
    return 0 if all("error" not in run for t in results.values() for runs in t.values() for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
