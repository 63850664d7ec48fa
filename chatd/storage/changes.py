"""Changes made anywhere, read from the store every few seconds: revoked tokens and changed users.

Every chatd on a store, and ``chatd-admin``, records logouts (revoked tokens)
and account changes (bans, deletions, password, role and name changes) in the
store. :class:`ChangePoller` reads what is new every ``every`` seconds, keeps
the cache in step (revocations learnt, changed users dropped) and tells its
``listener`` (``chatd.chat.sessions.Sessions.changed``), which closes or
renames the sockets concerned. The first poll loads every revocation still in
force; until then the cache asks the store about each token.
"""

from __future__ import annotations

from twisted.application.service import Service
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import LoopingCall

# A little overlap: a change written by another process just before its clock said so.
OVERLAP = 5.0


class ChangePoller(Service):
    """Polls ``store`` (the store itself, not the cache) for changes; see the module docstring."""

    name = "change-poller"

    def __init__(self, store, cache, listener, clock, every: float = 2.0) -> None:
        self._store = store
        self._cache = cache
        self._listener = listener
        self._clock = clock
        self._every = every
        self._polled_at: float | None = None
        self._loop: LoopingCall | None = None

    def startService(self) -> None:
        super().startService()
        self._loop = LoopingCall(lambda: ensureDeferred(self.poll()))
        self._loop.clock = self._clock
        self._loop.start(self._every, now=True)

    def stopService(self):
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    async def poll(self) -> None:
        """One turn: learn what changed since the last (or everything in force, the first time)."""
        started = self._clock.seconds()
        since = None if self._polled_at is None else self._polled_at - OVERLAP
        try:
            found = await self._store.revoked_since(since)
            changed = [] if since is None else await self._store.users_changed_since(since)
        except Exception:
            return  # the store is away: keep what we know, try again next time
        new = self._cache.learn_revocations(found, started, complete=since is None)
        for user_id in changed:
            self._cache.forget_user(user_id)
        self._polled_at = started
        if since is not None and (new or changed):
            # Made anywhere (this process included): the sockets they concern are checked again.
            self._listener.changed(new, changed)
