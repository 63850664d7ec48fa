"""Unit tests for chatd.chat.roomstate: each room's last seq and its cache of recent messages (SPEC.md, Details: History)."""

import json
from datetime import datetime, timedelta, timezone

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from chatd.chat.roomstate import CACHED_PER_ROOM, PROBE, ROOM_BYTES, RoomBook, RoomState
from chatd.storage.memory import MemoryStore
from chatd.storage.records import Message, StoreUnavailable

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def message(room, seq, text=None, user_id="u1", user="alice", **changes):
    """A stored message of ``room`` with ``seq``, a second apart from the previous one."""
    return Message(room, seq, user_id, user, T0 + timedelta(seconds=seq),
                   f"message {seq}" if text is None else text, **changes)


def seqs(entries):
    return [entry.seq for entry in entries]


class RoomStateTests(SynchronousTestCase):
    """The newest messages of one room, with every seq from ``first_cached`` on."""

    def test_new_room(self):
        """A room without messages has last seq 0 and an empty, complete cache."""
        state = RoomState("lobby", 0)
        self.assertEqual(state.last_seq, 0)
        self.assertEqual(state.first_cached, 1)
        self.assertEqual(state.cached(0, 0), [])
        self.assertIsNone(state.last_message_at)

    def test_append(self):
        """Appending the next message advances last seq and time and caches its JSON body."""
        state = RoomState("lobby", 0)
        entry = state.append(message("lobby", 1, "hi", user_id="u7", user="zed"))
        self.assertEqual(state.last_seq, 1)
        self.assertEqual(state.last_message_at, T0 + timedelta(seconds=1))
        self.assertEqual((entry.seq, entry.user_id), (1, "u7"))
        body = json.loads(entry.body)
        self.assertEqual((body["room"], body["seq"], body["id"], body["user"], body["text"]),
                         ("lobby", 1, "lobby:1", "zed", "hi"))
        self.assertEqual(seqs(state.cached(0, 1)), [1])

    def test_cached_ranges(self):
        """``cached(after, upto)`` holds exactly the seqs after < seq <= upto, capped at last seq."""
        state = RoomState("lobby", 0)
        for seq in range(1, 11):
            state.append(message("lobby", seq))
        self.assertEqual(seqs(state.cached(0, 10)), list(range(1, 11)))
        self.assertEqual(seqs(state.cached(3, 6)), [4, 5, 6])
        self.assertEqual(seqs(state.cached(8, 100)), [9, 10])
        self.assertEqual(state.cached(10, 10), [])
        self.assertEqual(state.cached(12, 20), [])

    def test_loaded_room_has_nothing_cached(self):
        """A room loaded with a last seq from the store cannot answer older ranges from memory."""
        state = RoomState("lobby", 40, T0)
        self.assertEqual(state.first_cached, 41)
        self.assertIsNone(state.cached(30, 40))
        self.assertIsNone(state.cached(0, 40))
        self.assertEqual(state.cached(40, 40), [])

    def test_first_cached_after_load_and_append(self):
        """After loading at seq 40 and appending 41, 42, only ranges from 40 on are in memory."""
        state = RoomState("lobby", 40)
        state.append(message("lobby", 41))
        state.append(message("lobby", 42))
        self.assertEqual(state.first_cached, 41)
        self.assertEqual(seqs(state.cached(40, 42)), [41, 42])
        self.assertEqual(seqs(state.cached(41, 42)), [42])
        self.assertIsNone(state.cached(39, 42))

    def test_cache_limit(self):
        """Only the newest CACHED_PER_ROOM messages are kept; older ranges must come from the store."""
        state = RoomState("lobby", 0)
        total = CACHED_PER_ROOM + 30
        for seq in range(1, total + 1):
            state.append(message("lobby", seq))
        first = total - CACHED_PER_ROOM + 1
        self.assertEqual(state.first_cached, first)
        self.assertEqual(seqs(state.cached(first - 1, total)), list(range(first, total + 1)))
        self.assertIsNone(state.cached(first - 2, total))
        self.assertIsNone(state.cached(0, total))
        self.assertIsNone(state.cached(0, 5))
        self.assertEqual(state.last_seq, total)

    def test_gap_restarts_cache(self):
        """A message after a gap (another process wrote) drops what is cached: the gap is unknown."""
        state = RoomState("lobby", 0)
        for seq in (1, 2, 3):
            state.append(message("lobby", seq))
        state.append(message("lobby", 6))
        self.assertEqual(state.last_seq, 6)
        self.assertEqual(state.first_cached, 6)
        self.assertIsNone(state.cached(3, 6))
        self.assertIsNone(state.cached(0, 6))
        self.assertEqual(seqs(state.cached(5, 6)), [6])

    def test_reset(self):
        """``reset`` forgets the cache and takes a newer last seq learnt from the store."""
        state = RoomState("lobby", 0)
        for seq in (1, 2, 3):
            state.append(message("lobby", seq))
        state.reset(7)
        self.assertEqual(state.last_seq, 7)
        self.assertEqual(state.first_cached, 8)
        self.assertIsNone(state.cached(0, 3))
        self.assertIsNone(state.cached(3, 7))
        self.assertEqual(state.cached(7, 7), [])
        state.append(message("lobby", 8))
        self.assertEqual(seqs(state.cached(7, 8)), [8])

    def test_replace_edited(self):
        """An edited message's cached body carries the new text and ``edited_at``."""
        state = RoomState("lobby", 0)
        for seq in (1, 2):
            state.append(message("lobby", seq))
        edited_at = T0 + timedelta(minutes=5)
        state.replace(message("lobby", 1, "fixed", edited_at=edited_at))
        first, second = state.cached(0, 2)
        self.assertEqual(json.loads(first.body)["text"], "fixed")
        self.assertEqual(json.loads(first.body)["edited_at"], "2024-05-01T12:05:00.000Z")
        self.assertEqual(first.message.text, "fixed")
        self.assertEqual(json.loads(second.body)["text"], "message 2")

    def test_replace_deleted(self):
        """A deleted message's cached body becomes a tombstone without text."""
        state = RoomState("lobby", 0)
        state.append(message("lobby", 1, "secret"))
        state.replace(message("lobby", 1, None, deleted=True))
        body = json.loads(state.cached(0, 1)[0].body)
        self.assertTrue(body["deleted"])
        self.assertNotIn("text", body)

    def test_replace_uncached_is_ignored(self):
        """Replacing a message that is not cached changes nothing cached."""
        state = RoomState("lobby", 0)
        state.append(message("lobby", 1, "one"))
        state.replace(message("lobby", 5, "five"))
        self.assertEqual([json.loads(e.body)["text"] for e in state.cached(0, 5)], ["one"])
        self.assertEqual(state.last_seq, 1)


class RoomBookTests(SynchronousTestCase):
    """RoomStates loaded from the store, probing past a stale room head."""

    def setUp(self):
        self.store = MemoryStore()
        self.book = RoomBook(self.store)

    def get(self, name, book=None):
        return self.successResultOf(Deferred.fromCoroutine((book or self.book).get(name)))

    def current(self, name):
        return self.successResultOf(Deferred.fromCoroutine(self.book.current(name)))

    def store_messages(self, room, first, last):
        self.successResultOf(self.store.insert_messages([message(room, seq) for seq in range(first, last + 1)]))

    def test_unknown_room_is_empty(self):
        """A room the store never saw starts at seq 0 with no last message time."""
        state = self.get("lobby")
        self.assertEqual(state.name, "lobby")
        self.assertEqual(state.last_seq, 0)
        self.assertIsNone(state.last_message_at)

    def test_loads_room_head(self):
        """The last seq and time come from the store's room head."""
        self.store_messages("lobby", 1, 5)
        self.successResultOf(self.store.advance_rooms({"lobby": (5, T0)}))
        state = self.get("lobby")
        self.assertEqual(state.last_seq, 5)
        self.assertEqual(state.last_message_at, T0)

    def test_probes_past_stale_head(self):
        """A head lagging behind the stored messages (a crash between writes) is corrected by probing."""
        self.store_messages("lobby", 1, 9)
        self.successResultOf(self.store.advance_rooms({"lobby": (4, T0)}))
        self.assertEqual(self.get("lobby").last_seq, 9)

    def test_probes_without_head(self):
        """Messages stored without any room head are still found."""
        self.store_messages("lobby", 1, 3)
        self.assertEqual(self.get("lobby").last_seq, 3)

    def test_probes_more_than_one_window(self):
        """A head far behind (more than one probe window) is still corrected."""
        self.store_messages("lobby", 1, 2 * PROBE + 10)
        self.successResultOf(self.store.advance_rooms({"lobby": (1, T0)}))
        self.assertEqual(self.get("lobby").last_seq, 2 * PROBE + 10)

    def test_get_is_cached(self):
        """A loaded room is not read from the store again: later writes elsewhere go unseen by ``get``."""
        self.store_messages("lobby", 1, 2)
        state = self.get("lobby")
        self.store_messages("lobby", 3, 4)
        self.assertIs(self.get("lobby"), state)
        self.assertEqual(state.last_seq, 2)
        self.assertIs(self.book.peek("lobby"), state)

    def test_peek_does_not_load(self):
        """``peek`` answers only what is already in memory."""
        self.assertIsNone(self.book.peek("lobby"))

    def test_forget(self):
        """A forgotten room is read from the store again on next use."""
        self.store_messages("lobby", 1, 2)
        state = self.get("lobby")
        self.store_messages("lobby", 3, 5)
        self.book.forget("lobby")
        self.assertIsNone(self.book.peek("lobby"))
        again = self.get("lobby")
        self.assertIsNot(again, state)
        self.assertEqual(again.last_seq, 5)

    def test_forget_unknown_room(self):
        """Forgetting a room that was never loaded is harmless."""
        self.book.forget("nowhere")
        self.assertIsNone(self.book.peek("nowhere"))

    def test_eviction_least_recently_used(self):
        """Past its capacity the book drops the room used least recently."""
        book = RoomBook(self.store, capacity=2)
        self.get("a", book)
        self.get("b", book)
        self.get("a", book)  # a is now more recent than b
        self.get("c", book)
        self.assertIsNotNone(book.peek("a"))
        self.assertIsNone(book.peek("b"))
        self.assertIsNotNone(book.peek("c"))

    def test_eviction_keeps_busy_rooms(self):
        """A room with writes in flight is never evicted, even when it is the least recently used."""
        book = RoomBook(self.store, capacity=2)
        busy = self.get("a", book)
        busy.busy += 1
        self.get("b", book)
        self.get("c", book)
        self.assertIs(book.peek("a"), busy)
        self.assertIsNone(book.peek("b"))
        self.assertIsNotNone(book.peek("c"))
        busy.busy -= 1
        self.get("d", book)
        self.assertIsNone(book.peek("a"))
        self.assertIsNotNone(book.peek("d"))

    def test_store_down_fails_load(self):
        """Loading a room while the store is down fails, and nothing half-loaded is kept."""
        self.store.down = True
        self.failureResultOf(Deferred.fromCoroutine(self.book.get("lobby")), StoreUnavailable)
        self.assertIsNone(self.book.peek("lobby"))


class ByteBoundTests(SynchronousTestCase):
    """Issue 9, finding 4: the history cache is bounded in bytes, per room and in all."""

    def test_a_room_of_huge_messages_keeps_its_bytes_bounded(self):
        """128 messages of 4,000 emoji would be 2 MB; the room keeps at most ROOM_BYTES of the newest
        (a gap-free tail), and what it dropped is simply read from the store."""
        state = RoomState("lobby", 0)
        for seq in range(1, CACHED_PER_ROOM + 1):
            state.append(message("lobby", seq, "\U0001F600" * 4000))
        self.assertLessEqual(state.bytes, ROOM_BYTES)
        self.assertGreater(state.first_cached, 100)
        cached = state.cached(state.first_cached - 1, state.last_seq)
        self.assertEqual(seqs(cached), list(range(state.first_cached, CACHED_PER_ROOM + 1)))
        self.assertEqual(state.bytes, sum(len(entry.body) for entry in cached))
        self.assertIsNone(state.cached(0, state.last_seq))

    def test_the_book_evicts_rooms_past_its_budget(self):
        """Rooms whose caches together pass the book's budget are evicted, least recently used first,
        but never a busy one; the book's byte count stays exact."""
        book = RoomBook(MemoryStore(), budget=1024 * 1024)
        busy = self.successResultOf(book.get("busy"))
        busy.busy = 1
        busy.append(message("busy", 1, "x" * 1000))
        for n in range(40):
            state = self.successResultOf(book.get(f"room{n}"))
            for seq in range(1, 9):
                state.append(message(f"room{n}", seq, "\U0001F600" * 4000))
        self.assertLessEqual(book.bytes, 1024 * 1024)
        self.assertIs(book.peek("busy"), busy)
        self.assertIsNone(book.peek("room0"))
        self.assertIsNotNone(book.peek("room39"))
        live = [book.peek(name) for name in ["busy"] + [f"room{n}" for n in range(40)]]
        self.assertEqual(book.bytes, sum(state.bytes for state in live if state is not None))

    def test_rename_author_rewrites_only_their_cached_messages(self):
        """A renamed author's cached messages show the new name; others' are untouched; sizes stay exact."""
        book = RoomBook(MemoryStore())
        state = self.successResultOf(book.get("lobby"))
        state.append(message("lobby", 1, user_id="u1", user="bob"))
        state.append(message("lobby", 2, user_id="u2", user="carol"))
        book.rename_author("u1", "robert-the-renamed")
        names = [json.loads(entry.body)["user"] for entry in state.cached(0, 2)]
        self.assertEqual(names, ["robert-the-renamed", "carol"])
        self.assertEqual(book.bytes, sum(len(entry.body) for entry in state.cached(0, 2)))


class PinnedRoomTests(SynchronousTestCase):
    """A room a socket here has joined keeps its state: what its sockets were sent is what it knows."""

    def test_pinned_rooms_are_not_forgotten_only_their_cache(self):
        """Past the budget an unpinned room is forgotten; a pinned one keeps its last seq and drops its cache."""
        pinned = {"joined"}
        book = RoomBook(MemoryStore(), budget=200_000, pinned=pinned.__contains__)
        joined = self.successResultOf(book.get("joined"))
        for seq in range(1, 9):
            joined.append(message("joined", seq, "\U0001F600" * 4000))
        other = self.successResultOf(book.get("other"))
        for seq in range(1, 9):
            other.append(message("other", seq, "\U0001F600" * 4000))
        self.assertIs(book.peek("joined"), joined)
        self.assertEqual(joined.last_seq, 8)
        self.assertLessEqual(book.bytes, 200_000)
