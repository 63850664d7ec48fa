"""Backup and restore throughput and peak memory of ``chatd-admin`` (issue 14; docs/PERFORMANCE.md).

Builds (once, cached in --cache) an embedded store of 200,000 messages in 200
rooms and 200 MiB of files, written in chatd's own document shape through
MongoStore (insert_messages, new_file), then times

    chatd-admin --data-dir SOURCE backup FILE
    chatd-admin --data-dir FRESH restore FILE

each as a child process, whose peak RSS is its ru_maxrss (os.wait4). The
embedded store's own child (nx-27017) is not counted: it is the store, not the
tool.

    .venv/bin/python bench/backup_bench.py [--cache /tmp/chatd-backup-bench] [--messages 200000] [--mib 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from twisted.internet import defer, task

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatd.storage.embedded import EmbeddedStore  # noqa: E402
from chatd.storage.mongo import MongoStore  # noqa: E402
from chatd.storage.records import Message  # noqa: E402

ROOMS = 200
FILE_MIB = 5
ADMIN = str(Path(sys.executable).with_name("chatd-admin"))


async def build(reactor, data_dir: Path, messages: int, mib: int) -> None:
    embedded = EmbeddedStore(reactor, str(data_dir))
    embedded.startService()
    store = MongoStore(reactor, embedded.uri, timeout=60)
    store.startService()
    try:
        while not store.ready:
            await task.deferLater(reactor, 0.2)
        now = datetime.now(timezone.utc)
        per_room = messages // ROOMS
        for r in range(ROOMS):
            room = f"room{r}"
            await store.create_room(room, "public", "", None, now)
            for start in range(1, per_room + 1, 1000):
                batch = [Message(room, seq, "0" * 24, "bench", now, f"message {seq} in {room} with some words",
                                 f"c{seq}", None) for seq in range(start, min(per_room, start + 999) + 1)]
                await store.insert_messages(batch)
            await store.advance_rooms({room: (per_room, now)})
        block = os.urandom(1024 * 1024)
        for f in range(mib // FILE_MIB):
            writer = store.new_file(f"f{f}.bin", "application/octet-stream", "room0", "0" * 24, now)
            for _ in range(FILE_MIB):
                await writer.write(block)
            await writer.close()
    finally:
        await store.stopService()
        await embedded.stopService()


def timed(args: list[str]) -> tuple[float, float, str]:
    """Run ``chatd-admin args``: (seconds, peak RSS in MiB, its output)."""
    started = time.perf_counter()
    child = subprocess.Popen([ADMIN, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = child.stdout.read().decode()
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"chatd-admin {args[2]} failed:\n{output}")
    return elapsed, usage.ru_maxrss / 1024, output.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", default="/tmp/chatd-backup-bench")
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--mib", type=int, default=200)
    parser.add_argument("--build-into", help=argparse.SUPPRESS)  # the child that builds the store
    args = parser.parse_args()
    if args.build_into:  # task.react exits the process when done: building runs in a child of its own
        task.react(lambda reactor: defer.ensureDeferred(build(reactor, Path(args.build_into), args.messages, args.mib)))
    cache = Path(args.cache)
    source = cache / f"source-{args.messages}-{args.mib}"
    if not (source / "built").exists():
        shutil.rmtree(source, ignore_errors=True)
        started = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--messages", str(args.messages), "--mib", str(args.mib),
                        "--build-into", str(source)], check=True)
        (source / "built").write_text("")
        print(f"built the store in {time.perf_counter() - started:.0f}s")
    backup = cache / "bench.backup"
    fresh = cache / "fresh"
    shutil.rmtree(fresh, ignore_errors=True)
    seconds, rss, line = timed(["--data-dir", str(source), "backup", str(backup)])
    size = backup.stat().st_size / 1024 / 1024
    print(f"backup:  {seconds:6.1f}s  {size / seconds:6.1f} MiB/s  {args.messages / seconds:8.0f} messages/s  "
          f"peak RSS {rss:.0f} MiB  file {size:.0f} MiB\n  {line}")
    seconds, rss, line = timed(["--data-dir", str(fresh), "restore", str(backup)])
    print(f"restore: {seconds:6.1f}s  {size / seconds:6.1f} MiB/s  {args.messages / seconds:8.0f} messages/s  "
          f"peak RSS {rss:.0f} MiB\n  {line}")
    shutil.rmtree(fresh, ignore_errors=True)
    backup.unlink()


if __name__ == "__main__":
    main()
