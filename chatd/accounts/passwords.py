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

from chatd.accounts.fairqueue import FairQueue


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

    Every call names whose request it serves (``key``: the client address, see
    ``chatd.ratelimit.address_key``). Calls wait in a :class:`FairQueue`, so
    one address flooding logins delays another address's login by at most one
    hash per busy address; an address may hold ``per_key`` hashes at once (then
    429), and past ``max_waiting`` queued hashes in all callers get 503.
    """

    name = "passwords"

    def __init__(self, reactor, cost: int = 12, threads: int = 2, per_key: int | None = 4,
                 max_waiting: int = 4096) -> None:
        self._reactor = reactor
        self.cost = cost
        self._pool = ThreadPool(minthreads=1, maxthreads=threads, name="chatd-bcrypt")
        self._queue = FairQueue(self._in_pool, threads, per_key, max_waiting)
        self._decoy: bytes | None = None

    @property
    def pending(self) -> int:
        """Hashes waiting for or running on the bcrypt threads."""
        return self._queue.pending

    def startService(self) -> None:
        super().startService()
        self._pool.start()

    def stopService(self):
        super().stopService()
        return deferToThreadPool(self._reactor, self._reactor.getThreadPool(), self._pool.stop)

    def hash(self, password: str, key: str = "") -> Deferred:
        """Deferred bcrypt hash (bytes) of ``password``, queued as ``key``'s."""
        return self._queue.submit(key, (_hash, password, self.cost))

    def verify(self, password: str, hashed: bytes | None, key: str = "") -> Deferred:
        """Deferred bool; with ``hashed=None`` (no such account) still spends the time of a real check."""
        if hashed is None:
            return Deferred.fromCoroutine(self._verify_against_decoy(password, key))
        return self._queue.submit(key, (_check, password, hashed))

    async def _verify_against_decoy(self, password: str, key: str) -> bool:
        # A hash of a random password at the configured cost, made once: checking an
        # unknown account against it takes as long as a wrong password for a real one,
        # so response times do not tell which accounts exist.
        if self._decoy is None:
            self._decoy = await self._queue.submit(key, (_hash, secrets.token_urlsafe(16), self.cost))
        await self._queue.submit(key, (_check, password, self._decoy))
        return False

    def _in_pool(self, job: tuple) -> Deferred:
        function, *args = job
        return deferToThreadPool(self._reactor, self._pool, function, *args)
