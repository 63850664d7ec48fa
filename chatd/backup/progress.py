"""Progress of a backup or restore on stderr: a bar on a terminal, a plain line every few seconds otherwise."""

from __future__ import annotations

import sys
import time

MIB = 1024 * 1024
BAR = 30
EVERY_LINE = 5.0  # seconds between plain lines
EVERY_BAR = 0.2  # seconds between bar redraws


class Progress:
    """Counts bytes and items; ``total_bytes`` (when known) makes the bar show a fraction."""

    def __init__(self, verb: str, stream=None, total_bytes: int | None = None, clock=time.monotonic) -> None:
        self._verb = verb
        self._stream = stream if stream is not None else sys.stderr
        self._tty = hasattr(self._stream, "isatty") and self._stream.isatty()
        self._clock = clock
        self._started = self._shown = clock()
        self.total_bytes = total_bytes
        self.bytes = 0
        self.items = 0

    def add(self, nbytes: int = 0, items: int = 0) -> None:
        self.bytes += nbytes
        self.items += items
        now = self._clock()
        if now - self._shown >= (EVERY_BAR if self._tty else EVERY_LINE):
            self._shown = now
            self._show(now)

    def _line(self, now: float) -> str:
        elapsed = max(now - self._started, 1e-6)
        return (f"{self.bytes / MIB:.1f} MiB, {self.items:,} items, "
                f"{self.bytes / MIB / elapsed:.1f} MiB/s, {elapsed:.0f}s")

    def _show(self, now: float) -> None:
        if not self._tty:
            self._stream.write(f"{self._verb}: {self._line(now)}\n")
        else:
            if self.total_bytes:
                done = min(1.0, self.bytes / self.total_bytes)
                bar = "#" * int(done * BAR)
                self._stream.write(f"\r{self._verb} [{bar:<{BAR}}] {done:4.0%} {self._line(now)}\x1b[K")
            else:
                self._stream.write(f"\r{self._verb} {self._line(now)}\x1b[K")
        self._stream.flush()

    def done(self) -> None:
        """The final figures (on a terminal, ending the bar's line)."""
        now = self._clock()
        if self._tty:
            self._show(now)
            self._stream.write("\n")
        else:
            self._stream.write(f"{self._verb} done: {self._line(now)}\n")
        self._stream.flush()


class Counted:
    """A binary stream whose reads are counted on a Progress (the checking pass of a restore)."""

    def __init__(self, stream, progress: Progress) -> None:
        self._stream = stream
        self._progress = progress

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._progress.add(len(data))
        return data
