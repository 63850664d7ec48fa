"""The data directory (``--data-dir``) is chatd's alone: directories 0700, files 0600.

It holds the token secret, the embedded store's SQLite files, its password and
its URI. Everything chatd creates there is private from the start (the store's
child runs with umask 077); :func:`prepare` also takes back what an older chatd
left readable to others.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from twisted.logger import Logger

_log = Logger()


def prepare(data_dir: str | os.PathLike) -> Path:
    """Create ``data_dir`` (mode 0700) or, if it exists, remove group and other access from all it holds.

    Symbolic links are neither followed nor changed: what they point to is not
    chatd's to change.
    """
    root = Path(data_dir)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    loosened = 0
    for directory, subdirectories, files in os.walk(root):
        for path in [Path(directory)] + [Path(directory, name) for name in files]:
            loosened += _restrict(path)
        subdirectories[:] = [name for name in subdirectories if not Path(directory, name).is_symlink()]
    if loosened:
        _log.warn("{count} file(s) in {path} were open to other users; restricted to their owner",
                  count=loosened, path=str(root))
    return root


def _restrict(path: Path) -> int:
    try:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode) or not stat.S_IMODE(mode) & 0o077:
            return 0
        path.chmod(stat.S_IMODE(mode) & ~0o077)
    except FileNotFoundError:  # a store's -shm file can vanish as we walk
        return 0
    return 1


def write_private(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to a file only its owner may read (mode 0600, even if an older file was not)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
