"""Unit tests for chatd.chat.history's ``joined.history``: the latest 50 or everything since, within a byte bound."""

import json
from datetime import datetime, timezone

from twisted.trial.unittest import SynchronousTestCase

from chatd.chat.history import JOIN_HISTORY_BYTES, History
from chatd.chat.registry import Registry
from chatd.chat.roomstate import RoomBook
from chatd.storage.memory import MemoryStore
from chatd.storage.records import Message

NOW = datetime(2024, 5, 1, tzinfo=timezone.utc)


class JoinHistoryTests(SynchronousTestCase):
    """Issue 9, finding 4: a join never builds a frame larger than a socket may hold."""

    def setUp(self):
        self.store = MemoryStore()
        self.rooms = RoomBook(self.store)
        self.history = History(self.store, self.rooms, None, Registry())

    def fill(self, count, text):
        self.successResultOf(self.store.insert_messages(
            [Message("big", seq, "u1", "alice", NOW, text) for seq in range(1, count + 1)]))
        self.successResultOf(self.store.advance_rooms({"big": (count, NOW)}))
        return self.successResultOf(self.rooms.get("big"))

    def test_since_zero_on_a_room_of_huge_messages_is_cut_and_says_so(self):
        """1,000 messages of 16 kB after since=0 would be a 16 MB frame: the oldest that fit in
        JOIN_HISTORY_BYTES come, in order from seq 1, with truncated and the last seq they cover."""
        state = self.fill(1000, "\U0001F600" * 4000)
        bodies, upto, truncated = self.successResultOf(self.history.for_join(state, 0))
        self.assertTrue(truncated)
        self.assertLessEqual(sum(len(body) for body in bodies), JOIN_HISTORY_BYTES)
        self.assertEqual([json.loads(body)["seq"] for body in bodies], list(range(1, upto + 1)))
        self.assertGreater(upto, 10)

    def test_latest_history_keeps_the_newest_that_fit(self):
        """Without since, the newest of the latest 50 that fit come, ending at the room's last seq."""
        state = self.fill(60, "\U0001F600" * 4000)
        bodies, upto, truncated = self.successResultOf(self.history.for_join(state, None))
        seqs = [json.loads(body)["seq"] for body in bodies]
        self.assertEqual((upto, truncated, seqs[-1]), (60, False, 60))
        self.assertEqual(seqs, list(range(seqs[0], 61)))
        self.assertLess(len(seqs), 50)
        self.assertLessEqual(sum(len(body) for body in bodies), JOIN_HISTORY_BYTES)

    def test_small_messages_are_not_cut(self):
        """Ordinary rooms are unaffected: every message since, up to the 1000 of SPEC.md."""
        state = self.fill(300, "hello")
        bodies, upto, truncated = self.successResultOf(self.history.for_join(state, 0))
        self.assertEqual((len(bodies), upto, truncated), (300, 300, False))
