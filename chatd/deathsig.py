"""``die_with_parent()``: the first thing each of chatd's child processes does (store, bus, workers).

Linux sends the caller SIGTERM when its parent dies, even by SIGKILL, so no
child outlives chatd. Imports nothing heavy: the bus's child calls it just
before it becomes valkey-server.
"""

from __future__ import annotations

import sys


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies (elsewhere: nothing)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
