"""A queue that shares a few workers fairly between clients (round robin by key).

Password hashing is the one expensive thing an unauthenticated client can ask
for. With a plain first-come queue, a handful of client addresses bursting
logins fill it, and everyone else's login waits behind them or is refused. Here
each key (a client address, an IPv6 /64) has its own line, the workers take one
job from each waiting key in turn, and a key may hold only ``per_key`` jobs at
once: a newcomer waits for at most one job per other active key, however many
the busiest key sent.
"""

from __future__ import annotations

from collections import deque
from typing import Callable

from twisted.internet.defer import Deferred

from chatd import errors


class FairQueue:
    """Runs jobs through ``start(job) -> Deferred`` with at most ``slots`` running at once.

    ``submit`` refuses with 429 when the key already has ``per_key`` jobs waiting
    or running (no such cap when ``per_key`` is None), and with 503 when
    ``max_waiting`` jobs wait in all.
    """

    def __init__(self, start: Callable[[tuple], Deferred], slots: int, per_key: int | None, max_waiting: int) -> None:
        self._start = start
        self._slots = slots
        self._per_key = per_key
        self._max_waiting = max_waiting
        self._lines: dict[str, deque] = {}  # key → its waiting (job, Deferred)s
        self._turns: deque[str] = deque()  # keys with waiting jobs, in serving order
        self._held: dict[str, int] = {}  # key → its jobs waiting or running
        self.waiting = 0
        self.running = 0

    @property
    def pending(self) -> int:
        """Jobs waiting or running."""
        return self.waiting + self.running

    def submit(self, key: str, job: tuple) -> Deferred:
        """Queue ``job`` for ``key``; its Deferred fires with the job's result."""
        if self._per_key is not None and self._held.get(key, 0) >= self._per_key:
            raise errors.rate_limited(1)
        if self.waiting >= self._max_waiting:
            raise errors.unavailable("The server is busy; try again shortly.", retry_after=1)
        done: Deferred = Deferred()
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = deque()
            self._turns.append(key)
        line.append((job, done))
        self._held[key] = self._held.get(key, 0) + 1
        self.waiting += 1
        self._serve()
        return done

    def _serve(self) -> None:
        while self.running < self._slots and self._turns:
            key = self._turns.popleft()
            line = self._lines[key]
            job, done = line.popleft()
            if line:
                self._turns.append(key)  # its next job waits for every other key's turn
            else:
                del self._lines[key]
            self.waiting -= 1
            self.running += 1
            self._start(job).addBoth(self._finished, key, done)

    def _finished(self, result, key: str, done: Deferred) -> None:
        self.running -= 1
        held = self._held[key] - 1
        if held:
            self._held[key] = held
        else:
            del self._held[key]
        self._serve()
        done.callback(result)  # a Failure passes on as a failure
