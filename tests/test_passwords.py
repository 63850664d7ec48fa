"""bcrypt hashing happens on its own thread pool, never on the reactor thread."""

from __future__ import annotations

import threading

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from chatd import errors
from chatd.accounts import passwords
from chatd.accounts.passwords import PasswordHasher


class PasswordHasherTests(TestCase):
    def setUp(self):
        self.hasher = PasswordHasher(reactor, cost=4)
        self.hasher.startService()
        self.addCleanup(self.hasher.stopService)

    async def test_hash_and_verify(self):
        """A hash verifies its password only, including characters past bcrypt's 72-byte limit."""
        long_password = "é" * 100  # 200 bytes of UTF-8
        hashed = await self.hasher.hash(long_password)
        self.assertTrue(hashed.startswith(b"$2b$04$"))
        self.assertTrue(await self.hasher.verify(long_password, hashed))
        self.assertFalse(await self.hasher.verify("é" * 99 + "e", hashed))

    async def test_runs_off_the_reactor_thread(self):
        """The hash function runs on a pool thread and the call returns before it finishes."""
        threads = []
        original = passwords._hash

        def recording_hash(password, cost):
            threads.append(threading.current_thread().name)
            return original(password, cost)

        self.patch(passwords, "_hash", recording_hash)
        pending = self.hasher.hash("some password")
        self.assertFalse(pending.called)
        self.assertEqual(self.hasher.pending, 1)
        await pending
        self.assertEqual(len(threads), 1)
        self.assertNotEqual(threads[0], threading.main_thread().name)
        self.assertEqual(self.hasher.pending, 0)

    async def test_unknown_user_costs_a_real_check(self):
        """verify with no stored hash still runs bcrypt (against the decoy) and says no."""
        self.assertFalse(await self.hasher.verify("anything at all", None))

    async def test_one_address_cannot_hold_more_than_its_share(self):
        """An address with ``per_key`` hashes in flight gets 429 for the next; another address is served."""
        hasher = PasswordHasher(reactor, cost=4, threads=1, per_key=2)
        hasher.startService()
        self.addCleanup(hasher.stopService)
        first = [hasher.hash("password one", key="198.51.100.1") for _ in range(2)]
        with self.assertRaises(errors.ApiError) as refused:
            hasher.hash("password one", key="198.51.100.1")
        self.assertEqual((refused.exception.status, refused.exception.code), (429, "rate_limited"))
        other = await hasher.hash("password two", key="198.51.100.2")
        self.assertTrue(await hasher.verify("password two", other, key="198.51.100.2"))
        for pending in first:
            await pending
