"""bcrypt hashing on a dedicated, bounded thread pool.

bcrypt at cost 12 takes ~250 ms of CPU; on the reactor thread it would stall
every socket, so it always runs in ``PasswordHasher``'s pool. bcrypt only reads
the first 72 bytes of its input, so the password is first reduced to a
base64 SHA-256 digest (44 bytes) and every one of its up to 128 characters counts.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

import bcrypt
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from chatd import errors


def _prehash(password: str) -> bytes:
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


def _hash(password: str, cost: int) -> bytes:
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(cost))


def _check(password: str, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(_prehash(password), hashed)
    except ValueError:
        return False


class PasswordHasher(Service):
    """Hashes and checks passwords off the reactor; owns its thread pool's lifecycle.

    At most ``max_pending`` hashes wait at once; past that, callers get 503
    rather than an ever-growing queue (the login rate limit normally keeps the
    queue far shorter).
    """

    name = "passwords"

    def __init__(self, reactor, cost: int = 12, threads: int = 2, max_pending: int = 256) -> None:
        self._reactor = reactor
        self.cost = cost
        self._pool = ThreadPool(minthreads=1, maxthreads=threads, name="chatd-bcrypt")
        self._max_pending = max_pending
        self.pending = 0
        self._decoy: bytes | None = None

    def startService(self) -> None:
        super().startService()
        self._pool.start()

    def stopService(self):
        super().stopService()
        return deferToThreadPool(self._reactor, self._reactor.getThreadPool(), self._pool.stop)

    def hash(self, password: str) -> Deferred:
        """Deferred bcrypt hash (bytes) of ``password``."""
        return self._run(_hash, password, self.cost)

    def verify(self, password: str, hashed: bytes | None) -> Deferred:
        """Deferred bool; with ``hashed=None`` (no such account) still spends the time of a real check."""
        if hashed is None:
            return Deferred.fromCoroutine(self._verify_against_decoy(password))
        return self._run(_check, password, hashed)

    async def _verify_against_decoy(self, password: str) -> bool:
        # A hash of a random password at the configured cost, made once: checking an
        # unknown account against it takes as long as a wrong password for a real one,
        # so response times do not tell which accounts exist.
        if self._decoy is None:
            self._decoy = await self._run(_hash, secrets.token_urlsafe(16), self.cost)
        await self._run(_check, password, self._decoy)
        return False

    def _run(self, function, *args) -> Deferred:
        if self.pending >= self._max_pending:
            raise errors.unavailable("The server is busy; try again shortly.", retry_after=1)
        self.pending += 1

        def done(result):
            self.pending -= 1
            return result

        return deferToThreadPool(self._reactor, self._pool, function, *args).addBoth(done)
