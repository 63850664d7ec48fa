"""Unit tests for chatd.chat.receipts: read receipts cost the store at most one write per second per user and room."""

from datetime import datetime, timezone

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from chatd.chat.receipts import ReadReceipts
from chatd.storage.memory import MemoryStore

NOW = datetime(2024, 5, 1, tzinfo=timezone.utc)


class CountingStore(MemoryStore):
    def __init__(self):
        super().__init__()
        self.writes = 0

    def mark_read(self, room, user_id, seq):
        self.writes += 1
        return super().mark_read(room, user_id, seq)


class ReadReceiptTests(SynchronousTestCase):
    """Issue 9, finding 5: many sockets sending receipts do not become a store write each."""

    def setUp(self):
        self.clock = Clock()
        self.store = CountingStore()
        self.successResultOf(self.store.add_membership("lobby", "u1", NOW, 0))
        self.receipts = ReadReceipts(self.store, self.clock)

    def read_seq(self):
        [membership] = self.successResultOf(self.store.memberships("u1", ["lobby"]))
        return membership.read_seq

    def test_a_second_of_receipts_is_one_write_of_the_newest(self):
        """1,600 receipts within a second (100 sockets' worth) are one store write, of the highest seq."""
        for seq in range(1, 1601):
            self.receipts.mark("lobby", "u1", seq)
        self.assertEqual(self.store.writes, 0)
        self.clock.advance(1)
        self.assertEqual((self.store.writes, self.read_seq()), (1, 1600))

    def test_receipts_that_move_nothing_are_not_told(self):
        """A receipt at or below the last one heard is neither written nor to be broadcast."""
        self.assertTrue(self.receipts.mark("lobby", "u1", 5))
        self.assertFalse(self.receipts.mark("lobby", "u1", 5))
        self.assertFalse(self.receipts.mark("lobby", "u1", 3))
        self.assertTrue(self.receipts.mark("lobby", "u1", 6))

    def test_a_store_outage_keeps_the_receipt_for_later(self):
        """While the store is down the newest position waits; it is written once the store answers."""
        self.receipts.mark("lobby", "u1", 7)
        self.store.down = True
        self.clock.advance(1)
        self.store.down = False
        self.clock.advance(1)
        self.assertEqual(self.read_seq(), 7)

    def test_idle_means_no_timer_and_stop_writes_what_waits(self):
        """With nothing waiting the timer stops; stopping the service writes pending receipts at once."""
        self.receipts.mark("lobby", "u1", 2)
        self.clock.advance(1)
        self.clock.advance(1)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.receipts.mark("lobby", "u1", 9)
        self.successResultOf(self.receipts.stop())
        self.assertEqual(self.read_seq(), 9)
        self.assertEqual(self.clock.getDelayedCalls(), [])
