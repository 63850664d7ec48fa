"""``chatd-base`` and ``chatd@<rev>``: chatd as it was at an earlier commit, beside today's chatd in one run.

What a feature costs per delivery is measured by running the same load against the code without it
(issue 13: mentions and threads against the commit before them). The commit's tree is taken with
``git archive`` into the target's temp dir (nothing is checked out in the repository) and run with
``twistd -ny chatd.tac`` from there, its package first on ``PYTHONPATH``, on the same venv (the
dependencies of that commit must be installed there). Every option goes in CHATD_* variables,
which is how chatd.tac is configured.
"""

from __future__ import annotations

import os
import subprocess
import sys

from wsbench_targets import REPO, ChatdServer, chatd_argv, chatd_env

# The last commit before issue 13 (mentions, threads, reactions, search): override with CHATD_BENCH_BASE.
DEFAULT_BASE = "3b8abdc"


def options_as_environment(argv: list[str]) -> dict[str, str]:
    """``--name value`` pairs of a chatd command line as the CHATD_NAME variables chatd.tac reads."""
    options = argv[argv.index("chatd") + 1:]
    return {f"CHATD_{name[2:].upper().replace('-', '_')}": value for name, value in zip(options[::2], options[1::2])}


class ChatdBase(ChatdServer):
    name = "chatd-base"
    rev = ""  # chatd@<rev> targets set it; chatd-base takes CHATD_BENCH_BASE or DEFAULT_BASE

    def __init__(self, secret: str) -> None:
        super().__init__(secret)
        self.rev = self.rev or os.environ.get("CHATD_BENCH_BASE", DEFAULT_BASE)
        self.tree = self.tmp / "base"

    def start(self) -> None:
        self.tree.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", self.rev], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(self.tree)], input=archive.stdout, check=True)
        print(f"[ws_bench] {self.name} is chatd at {self.rev}", file=sys.stderr, flush=True)
        super().start()

    def command(self) -> tuple[list[str], dict]:
        argv = chatd_argv(self.secret, self.port, self.tmp / "data", self.backlog, self.extra)
        env = chatd_env(**options_as_environment(argv), PYTHONPATH=str(self.tree))
        return [argv[0], "-n", "--pidfile=", "-y", str(self.tree / "chatd.tac")], env


def at_commit(target: str) -> type[ChatdBase] | None:
    """The server class of a ``chatd@<rev>`` target (several may run in one benchmark), else None."""
    prefix, _, rev = target.partition("@")
    if prefix != "chatd" or not rev:
        return None
    return type("ChatdAt", (ChatdBase,), {"name": target, "rev": rev})
