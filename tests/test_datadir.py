"""Unit tests for chatd.storage.datadir: the data dir and everything in it are readable by its owner only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from chatd.storage import datadir


def mode(path: Path) -> int:
    """The permission bits of ``path`` itself (not of what a link points to)."""
    return stat.S_IMODE(path.lstat().st_mode)


class PrepareTests(SynchronousTestCase):
    """``prepare`` creates the directory private and takes back what an older chatd left open."""

    def test_creates_private_directory(self):
        """A missing data dir (and its parents) is created with mode 0700."""
        root = Path(self.mktemp(), "nested", "data")
        self.assertEqual(datadir.prepare(root), root)
        self.assertEqual(mode(root), 0o700)

    def test_restricts_existing_modes_and_warns(self):
        """Directories 0755 become 0700, files 0644 become 0600 (0640 → 0600, 0700 stays), with one warning."""
        logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        root = Path(self.mktemp())
        (root / "store").mkdir(parents=True)
        files = {root / "jwt-secret": 0o644, root / "store" / "chatd.db": 0o640, root / "tool": 0o755,
                 root / "store" / "chatd.db-wal": 0o600}
        for path, bits in files.items():
            path.write_text("x")
            path.chmod(bits)
        root.chmod(0o755)
        (root / "store").chmod(0o750)
        datadir.prepare(root)
        self.assertEqual([mode(p) for p in files], [0o600, 0o600, 0o700, 0o600])
        self.assertEqual((mode(root), mode(root / "store")), (0o700, 0o700))
        self.assertEqual(len(logged), 1)
        self.assertEqual(logged[0]["count"], 5)

    def test_links_are_left_alone(self):
        """A symbolic link in the data dir is not followed: what it points to keeps its mode."""
        outside = Path(self.mktemp())
        (outside / "shared").mkdir(parents=True)
        target = outside / "shared" / "file"
        target.write_text("x")
        target.chmod(0o644)
        root = Path(self.mktemp())
        root.mkdir(mode=0o700)
        (root / "link").symlink_to(target)
        (root / "dirlink").symlink_to(outside / "shared")
        datadir.prepare(root)
        self.assertEqual(mode(target), 0o644)
        self.assertEqual(stat.S_IMODE((outside / "shared").stat().st_mode) & 0o077, 0o055)


class WritePrivateTests(SynchronousTestCase):
    """``write_private`` leaves a file only its owner can read."""

    def test_new_and_existing_files(self):
        """A new file is created 0600; an existing 0644 one is rewritten and becomes 0600."""
        path = Path(self.mktemp())
        datadir.write_private(path, "one\n")
        self.assertEqual((path.read_text(), mode(path)), ("one\n", 0o600))
        path.chmod(0o644)
        datadir.write_private(path, "two\n")
        self.assertEqual((path.read_text(), mode(path)), ("two\n", 0o600))

    def test_umask_does_not_loosen(self):
        """Even with a permissive umask the file is 0600."""
        old = os.umask(0)
        self.addCleanup(os.umask, old)
        path = Path(self.mktemp())
        datadir.write_private(path, "x")
        self.assertEqual(mode(path), 0o600)
