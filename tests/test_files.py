"""Unit tests for chatd.files.uploads' limits: the size of one file and the bytes a user may upload an hour."""

from datetime import datetime, timezone
from types import SimpleNamespace

from twisted.internet.defer import ensureDeferred
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from chatd.accounts.auth import Principal
from chatd.chat.roomstate import RoomBook
from chatd.chat.writer import MessageWriter
from chatd.errors import ApiError
from chatd.files.uploads import Files
from chatd.rooms.access import RoomAccess
from chatd.storage.memory import MemoryStore
from chatd.storage.records import UserRecord

NOW = datetime(2024, 5, 1, tzinfo=timezone.utc)


class UploadQuotaTests(TestCase):
    """Issue 9, finding 5: one user cannot fill the store with uploads."""

    def setUp(self):
        self.clock = Clock()
        self.store = MemoryStore()
        self.refusals = []
        writer = MessageWriter(self.store, RoomBook(self.store), self.clock)
        self.files = Files(self.store, writer, self.clock, max_upload=1_000_000, access=RoomAccess(self.store),
                           quota=100_000, refused=self.refusals.append)
        self.alice = self.principal("a1", "alice")

    def principal(self, user_id, name):
        """A signed-in user who is a member of the lobby (in the store, which the access rule asks)."""
        self.store.add_membership("lobby", user_id, NOW, 0)
        user = UserRecord(user_id, name, f"{name}@example.com", "user", NOW, b"h", rooms=("lobby",))
        return Principal(user, SimpleNamespace(jti="j", exp=0))

    async def upload(self, principal, size):
        pending = ensureDeferred(self.files.upload(principal, "lobby", "f.bin", [b"x" * 10_000] * (size // 10_000)))
        self.clock.advance(1)  # the file message's batch
        return await pending

    async def test_quota_refuses_with_429_and_keeps_nothing(self):
        """Within the hourly quota uploads work; past it they are 429 with Retry-After, counted in
        /metrics, and leave no file behind; another user has their own quota; time refills it."""
        await self.upload(self.alice, 60_000)
        with self.assertRaises(ApiError) as refused:
            await self.upload(self.alice, 60_000)
        self.assertEqual((refused.exception.status, refused.exception.code), (429, "rate_limited"))
        self.assertIn("Retry-After", refused.exception.headers)
        self.assertEqual(self.refusals, ["upload_quota"])
        self.assertEqual(len(self.store._files), 1)
        await self.upload(self.principal("b1", "bob"), 60_000)
        self.clock.advance(3600)
        await self.upload(self.alice, 60_000)

    async def test_too_large_names_the_limit_in_megabytes(self):
        """A file over --max-upload is 413 with the limit as people read it, not a byte count."""
        self.files = Files(self.store, None, self.clock, max_upload=1_000_000, access=RoomAccess(self.store),
                           quota=10_000_000)
        with self.assertRaises(ApiError) as refused:
            await self.files.upload(self.alice, "lobby", "big.bin", [b"x" * 600_000, b"x" * 600_000])
        self.assertEqual(refused.exception.status, 413)
        self.assertIn("MB", refused.exception.message)
        self.assertNotIn("1000000", refused.exception.message)
