"""bcrypt hashing on a dedicated, bounded thread pool.

bcrypt at cost 12 takes ~250 ms of CPU; on the reactor thread it would stall
every socket, so it always runs in ``PasswordHasher``'s pool. bcrypt only reads
the first 72 bytes of its input, so the password is first reduced to a
base64 SHA-256 digest (44 bytes) and every one of its up to 128 characters counts.
"""

from __future__ import annotations

import base64
import hashlib

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


# A cost-12 hash that matches no password: checking an unknown user's login
# against it takes as long as a wrong password, so timing does not tell
# whether an account exists.
_DECOY = b"$2b$12$HcDfqrwgfHkh4hXAu9VhD.6fL08gZjm5KSvDV608R5o49./cnPNGK"


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
        """Deferred bool; with ``hashed=None`` still spends the time of a real check."""
        if hashed is None:
            hashed = _DECOY
        return self._run(_check, password, hashed)

    def _run(self, function, *args) -> Deferred:
        if self.pending >= self._max_pending:
            raise errors.ApiError(
                503, "unavailable", "The server is busy; try again shortly.", headers={"Retry-After": "1"}
            )
        self.pending += 1

        def done(result):
            self.pending -= 1
            return result

        return deferToThreadPool(self._reactor, self._pool, function, *args).addBoth(done)
