"""``chatd-admin backup FILE`` and ``chatd-admin restore FILE [--force]`` on a started store (chatd.cli.admin)."""

from __future__ import annotations

import os
import sys

from twisted.internet import task

from chatd.backup import format as backup_format
from chatd.backup.dump import Dumper, describe
from chatd.backup.load import Loader, RestoreRefused, check, clear, occupied
from chatd.backup.progress import Progress

READY_WITHIN = 60.0  # seconds for the store's indexes and migrations, before a restore replaces them


class Refused(Exception):
    """A backup or restore that cannot be done, with the reason (exit status 1)."""


def check_file(path: str) -> tuple[dict, dict]:
    """Refuse a backup that is missing, truncated, corrupted or of another format, before touching any store."""
    if path == "-":
        raise Refused("restore reads a file, not standard input (it is read twice: checked first, then written)")
    try:
        return check(path)
    except OSError as e:
        raise Refused(f"cannot read {path}: {e.strerror}") from None
    except (backup_format.BackupFormatError, RestoreRefused) as e:
        raise Refused(f"{path}: {e}; nothing was changed") from None


async def backup(reactor, store, path: str) -> str:
    """Write the store to ``path`` (a temporary name, renamed when complete; ``-``: standard output)."""
    progress = Progress("backup")
    if path == "-":
        out, partial = sys.stdout.buffer, None
    else:
        partial = f"{path}.partial"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds password hashes
        out = os.fdopen(fd, "wb", buffering=1024 * 1024)
    try:
        dumper = Dumper(reactor, store, backup_format.Writer(out), progress)
        summary = await dumper.dump()
        out.flush()
        if partial is not None:
            os.fsync(out.fileno())
            out.close()
            os.replace(partial, path)
    except BaseException:
        if partial is not None:
            out.close()
            os.unlink(partial)
        raise
    progress.done()
    cut = sum(dumper.left_out.values())
    note = f" ({cut} messages being written in {len(dumper.left_out)} rooms left out)" if cut else ""
    return f"backed up {describe(summary)} to {path}{note}"


async def restore(reactor, store, path: str, force: bool) -> str:
    """Replace the store's chatd collections with the backup at ``path``, checked by :func:`check_file` before the
    store was started (the writing pass checks every record again as it reads it)."""
    deadline = reactor.seconds() + READY_WITHIN
    while not store.ready:  # its index creation would race the drops
        if reactor.seconds() > deadline:
            raise Refused("the store did not get ready")
        await task.deferLater(reactor, 0.1)
    held = await occupied(store)
    if held and not force:
        raise Refused(f"the target store already holds chatd data ({', '.join(held)}); "
                      "restore with --force to replace it")
    await clear(store)
    progress = Progress("restore", total_bytes=os.path.getsize(path))
    loader = Loader(store, progress)
    await loader.load(path)
    progress.done()
    counts = ", ".join(f"{n} {name}" for name, n in sorted(loader.counts.items()))
    return f"restored {counts}; {loader.files} files from {path}"
