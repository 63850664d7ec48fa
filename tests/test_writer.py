"""Unit tests for chatd.chat.writer: acked only once stored, gap-free seqs, idempotent client_id (SPEC.md, Guarantees)."""

import json
from datetime import datetime, timedelta, timezone

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from chatd.chat import writer as writer_module
from chatd.chat.roomstate import RoomBook
from chatd.chat.sequencer import Sequencer
from chatd.chat.writer import BATCH_MESSAGES, MessageWriter
from chatd.storage.memory import MemoryStore
from chatd.storage.records import Message, StoreUnavailable

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


class _Recording:
    """The events a sequencer tells: delivered entries are recorded; acks and announcements ignored."""

    def __init__(self, stored):
        self.stored = stored

    def message_stored(self, entry, origin):
        self.stored.append(entry)

    def message_acked(self, message, origin):
        pass

    def announce(self, message):
        pass


class WriterTestCase(SynchronousTestCase):
    def setUp(self):
        self.store = MemoryStore()
        self.rooms = RoomBook(self.store)
        self.clock = Clock()
        self.clock.advance(1_714_564_800)  # 2024-05-01T12:00:00Z
        self.stored = []
        self.sequencer = Sequencer(self.store, self.rooms, _Recording(self.stored), self.clock)
        self.writer = MessageWriter(self.store, self.rooms, self.clock, on_stored=self.sequencer.stored,
                                    catch_up=self.sequencer.catch_up)

    def submit(self, room="lobby", text="hello", client_id=None, user_id="u1", username="alice"):
        return self.writer.submit(room, user_id, username, text, client_id)

    def flush(self):
        """Let the batch window pass: the queued submissions are written (MemoryStore answers at once),
        and any further batches they filled right after."""
        self.clock.advance(writer_module.BATCH_WINDOW)
        while self.clock.getDelayedCalls() and min(c.getTime() for c in self.clock.getDelayedCalls()) <= self.clock.seconds():
            self.clock.advance(0)

    def result(self, d):
        return self.successResultOf(d)

    def stored_seqs(self, room, upto):
        """The seqs the store holds for ``room`` among 1..upto+5 (to see gaps and extras)."""
        messages = self.successResultOf(self.store.get_messages(room, list(range(1, upto + 6))))
        return [m.seq for m in messages]

    def insert_directly(self, room, seq, client_id=None, user_id="u9", username="other"):
        """Store a message as another chatd process would, behind this writer's back."""
        self.successResultOf(self.store.insert_messages(
            [Message(room, seq, user_id, username, T0, f"from elsewhere {seq}", client_id)]))


class BatchingTests(WriterTestCase):
    """Messages submitted in one reactor turn are written together, with consecutive seqs."""

    def test_nothing_before_the_turn_ends(self):
        """Nothing is written or acknowledged before the batch is flushed."""
        d = self.submit()
        self.assertNoResult(d)
        self.assertEqual(self.writer.batches, 0)
        self.assertEqual(self.stored_seqs("lobby", 1), [])
        self.flush()
        message, duplicate = self.result(d)
        self.assertEqual((message.seq, duplicate), (1, False))

    def test_one_turn_one_batch(self):
        """Submissions in one turn become a single batch with consecutive seqs from 1."""
        ds = [self.submit(text=f"m{i}") for i in range(5)]
        self.flush()
        self.assertEqual(self.writer.batches, 1)
        results = [self.result(d) for d in ds]
        self.assertEqual([m.seq for m, _ in results], [1, 2, 3, 4, 5])
        self.assertEqual([m.text for m, _ in results], ["m0", "m1", "m2", "m3", "m4"])
        self.assertEqual([dup for _, dup in results], [False] * 5)
        self.assertEqual(self.stored_seqs("lobby", 5), [1, 2, 3, 4, 5])

    def test_separate_counters_per_room(self):
        """Each room has its own seq counter, starting at 1."""
        a1, b1, a2, b2, a3 = (self.submit(room) for room in ("a", "b", "a", "b", "a"))
        self.flush()
        self.assertEqual(self.writer.batches, 1)
        self.assertEqual([self.result(d)[0].seq for d in (a1, a2, a3)], [1, 2, 3])
        self.assertEqual([self.result(d)[0].seq for d in (b1, b2)], [1, 2])
        self.assertEqual(self.stored_seqs("a", 3), [1, 2, 3])
        self.assertEqual(self.stored_seqs("b", 2), [1, 2])

    def test_next_turn_continues(self):
        """A later batch continues each room's seq where the previous one ended."""
        self.submit()
        self.submit()
        self.flush()
        d = self.submit()
        self.flush()
        self.assertEqual(self.writer.batches, 2)
        self.assertEqual(self.result(d)[0].seq, 3)
        self.assertEqual(self.stored_seqs("lobby", 3), [1, 2, 3])

    def test_message_fields(self):
        """A stored message carries its author, text, client_id and the clock's time."""
        d = self.submit(text="hi there", client_id="c-1", user_id="u5", username="eve")
        self.flush()
        message, _ = self.result(d)
        self.assertEqual((message.room, message.user_id, message.user, message.text, message.client_id),
                         ("lobby", "u5", "eve", "hi there", "c-1"))
        self.assertEqual(message.ts, T0)
        [in_store] = self.successResultOf(self.store.get_messages("lobby", [1]))
        self.assertEqual(in_store, message)

    def test_on_stored_in_seq_order(self):
        """``on_stored`` sees every stored message in seq order, its body being the Message JSON."""
        for i in range(4):
            self.submit(text=f"m{i}", client_id=f"c{i}")
        self.flush()
        self.assertEqual([entry.seq for entry in self.stored], [1, 2, 3, 4])
        bodies = [json.loads(entry.body) for entry in self.stored]
        self.assertEqual([b["seq"] for b in bodies], [1, 2, 3, 4])
        self.assertEqual([b["text"] for b in bodies], ["m0", "m1", "m2", "m3"])
        self.assertEqual(bodies[0]["id"], "lobby:1")
        self.assertEqual(bodies[0]["client_id"], "c0")
        self.assertEqual(bodies[0]["ts"], "2024-05-01T12:00:00.000Z")

    def test_on_stored_before_ack(self):
        """The broadcast hook runs before the sender's Deferred fires (ack follows broadcast)."""
        order = []
        self.writer._on_stored = lambda message, origin: order.append(("stored", message.seq))
        self.submit().addCallback(lambda result: order.append(("acked", result[0].seq)))
        self.flush()
        self.assertEqual(order, [("stored", 1), ("acked", 1)])

    def test_room_state_advanced(self):
        """After a batch the room's in-memory last seq and cache include the new messages."""
        self.submit()
        self.submit()
        self.flush()
        state = self.rooms.peek("lobby")
        self.assertEqual(state.last_seq, 2)
        self.assertEqual([e.seq for e in state.cached(0, 2)], [1, 2])

    def test_room_head_advanced(self):
        """The store's room head records the last seq and time within HEADS_EVERY seconds, in one write."""
        self.submit()
        self.flush()
        self.submit()
        self.flush()
        self.assertEqual(self.successResultOf(self.store.room_heads(["lobby"])), {})  # not yet
        self.clock.advance(writer_module.HEADS_EVERY)
        head = self.successResultOf(self.store.room_heads(["lobby"]))["lobby"]
        second_sent_at = T0 + timedelta(seconds=writer_module.BATCH_WINDOW)  # sent after the first flush
        self.assertEqual((head.last_seq, head.last_message_at), (2, second_sent_at))

    def test_stop_writes_pending_heads(self):
        """Stopping the writer writes the room heads it still holds."""
        self.submit()
        self.flush()
        self.successResultOf(self.writer.stop())
        self.assertEqual(self.successResultOf(self.store.room_heads(["lobby"]))["lobby"].last_seq, 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_batch_cap_splits_queue(self):
        """More than BATCH_MESSAGES queued messages are written in several batches, still gap-free."""
        total = 2 * BATCH_MESSAGES + 7
        ds = [self.submit(text=f"m{i}") for i in range(total)]
        self.flush()
        self.assertEqual(self.writer.batches, 1)  # the next batches start a window apart
        self.flush()
        self.flush()
        self.assertEqual(self.writer.batches, 3)
        self.assertEqual([self.result(d)[0].seq for d in ds], list(range(1, total + 1)))
        self.assertEqual(self.stored_seqs("lobby", total), list(range(1, total + 1)))
        self.assertEqual([entry.seq for entry in self.stored], list(range(1, total + 1)))

    def test_batch_byte_cap_splits_queue(self):
        """Large messages are split into batches by size, well before BATCH_MESSAGES of them."""
        count = 2 * writer_module.BATCH_BYTES // 4000
        ds = [self.submit(text="x" * 4000) for _ in range(count)]
        for _ in range(5):
            self.flush()
        self.assertGreater(self.writer.batches, 1)
        self.assertEqual([self.result(d)[0].seq for d in ds], list(range(1, count + 1)))


class OriginTests(WriterTestCase):
    def test_origin_is_handed_back_with_the_stored_message(self):
        """on_stored receives the origin its submitter passed (the sending socket), once per message."""
        seen = []
        self.writer._on_stored = lambda message, origin: seen.append((message.seq, origin))
        self.writer.submit("lobby", "u1", "alice", "a", None, origin="socket-1")
        self.writer.submit("lobby", "u2", "bob", "b", None)
        self.flush()
        self.assertEqual(seen, [(1, "socket-1"), (2, None)])


class IdempotencyTests(WriterTestCase):
    """Per (room, user, client_id), a repeat is answered with the original and not stored again."""

    def test_duplicate_while_pending(self):
        """The same client_id twice before the first is stored: one message, the second flagged duplicate."""
        first = self.submit(text="hello", client_id="c1")
        again = self.submit(text="hello", client_id="c1")
        self.flush()
        original, dup1 = self.result(first)
        repeat, dup2 = self.result(again)
        self.assertEqual((original.seq, dup1), (1, False))
        self.assertIs(repeat, original)
        self.assertTrue(dup2)
        self.assertEqual(self.stored_seqs("lobby", 1), [1])
        self.assertEqual(len(self.stored), 1)

    def test_duplicate_after_stored(self):
        """The same client_id after it was stored: the original, flagged, with no new seq."""
        first = self.submit(client_id="c1")
        self.flush()
        original, _ = self.result(first)
        again = self.submit(text="hello (resent)", client_id="c1")
        message, duplicate = self.result(again)  # answered at once, no batch needed
        # What is remembered is what an ack needs (not the text).
        self.assertEqual((message.room, message.seq, message.id, message.ts), (original.room, original.seq, original.id, original.ts))
        self.assertTrue(duplicate)
        self.flush()
        self.assertEqual(self.writer.batches, 1)
        self.assertEqual(self.stored_seqs("lobby", 1), [1])
        self.assertEqual(len(self.stored), 1)
        follow = self.submit(client_id="c2")
        self.flush()
        self.assertEqual(self.result(follow)[0].seq, 2)

    def test_duplicate_from_store(self):
        """A client_id stored before this writer existed (another process, a restart) resolves as duplicate."""
        self.insert_directly("lobby", 1, client_id="c1", user_id="u1", username="alice")
        d = self.submit(text="hello", client_id="c1")
        self.flush()
        message, duplicate = self.result(d)
        self.assertTrue(duplicate)
        self.assertEqual((message.seq, message.text), (1, "from elsewhere 1"))
        self.assertEqual(self.stored_seqs("lobby", 1), [1])
        self.assertEqual(self.stored, [])
        follow = self.submit(client_id="c2")
        self.flush()
        self.assertEqual(self.result(follow)[0].seq, 2)
        self.assertEqual(self.stored_seqs("lobby", 2), [1, 2])

    def test_duplicate_from_store_in_mixed_batch(self):
        """A resent client_id in the middle of a batch does not hold back or renumber the others."""
        self.insert_directly("lobby", 1, client_id="c1", user_id="u1", username="alice")
        before = self.submit(text="before", client_id="c0")
        resent = self.submit(text="resent", client_id="c1")
        after = self.submit(text="after", client_id="c2")
        self.flush()
        self.assertEqual(self.result(before)[0].seq, 2)
        original, duplicate = self.result(resent)
        self.assertEqual((original.seq, original.text, duplicate), (1, "from elsewhere 1", True))
        self.assertEqual(self.result(after)[0].seq, 3)
        self.assertEqual(self.stored_seqs("lobby", 3), [1, 2, 3])

    def test_client_id_scoped_to_room_and_user(self):
        """The same client_id in another room or from another user is a different message."""
        d1 = self.submit(room="a", client_id="c1")
        d2 = self.submit(room="b", client_id="c1")
        d3 = self.submit(room="a", client_id="c1", user_id="u2", username="bob")
        self.flush()
        results = [self.result(d) for d in (d1, d2, d3)]
        self.assertEqual([duplicate for _, duplicate in results], [False, False, False])
        self.assertEqual([(m.room, m.seq) for m, _ in results], [("a", 1), ("b", 1), ("a", 2)])

    def test_no_client_id_never_duplicate(self):
        """Messages without client_id are each stored, even with the same text."""
        d1, d2 = self.submit(text="same"), self.submit(text="same")
        self.flush()
        self.assertEqual([self.result(d)[1] for d in (d1, d2)], [False, False])
        self.assertEqual(self.stored_seqs("lobby", 2), [1, 2])


class ConcurrentWriterTests(WriterTestCase):
    """Several chatd processes share the store: a seq taken elsewhere is never reused or skipped."""

    def test_seq_taken_by_another_process(self):
        """The writer learns the true last seq and assigns the next free ones, leaving no gap."""
        self.submit()
        self.flush()  # the room is now loaded at seq 1
        self.insert_directly("lobby", 2)
        d1, d2 = self.submit(text="x"), self.submit(text="y")
        self.flush()
        self.assertEqual([self.result(d)[0].seq for d in (d1, d2)], [3, 4])
        self.assertEqual(self.stored_seqs("lobby", 4), [1, 2, 3, 4])
        texts = [m.text for m in self.successResultOf(self.store.get_messages("lobby", [2, 3, 4]))]
        self.assertEqual(texts, ["from elsewhere 2", "x", "y"])
        self.assertEqual([e.seq for e in self.stored], [1, 2, 3, 4])  # the other process's message too, in order
        self.assertEqual(self.rooms.peek("lobby").last_seq, 4)

    def test_several_seqs_taken(self):
        """Many seqs taken elsewhere are all skipped over, and nothing of ours is lost."""
        self.submit()
        self.flush()
        for seq in range(2, 8):
            self.insert_directly("lobby", seq)
        d = self.submit()
        self.flush()
        self.assertEqual(self.result(d)[0].seq, 8)
        self.assertEqual(self.stored_seqs("lobby", 8), list(range(1, 9)))

    def test_conflict_in_one_room_keeps_others(self):
        """A conflict in one room keeps the messages stored before it and renumbers only what follows."""
        self.submit("a")
        self.submit("b")
        self.flush()
        self.insert_directly("b", 2)
        a2, b3, a3 = self.submit("a", "a2"), self.submit("b", "b3"), self.submit("a", "a3")
        self.flush()
        self.assertEqual([self.result(d)[0].seq for d in (a2, b3, a3)], [2, 3, 3])
        self.assertEqual(self.stored_seqs("a", 3), [1, 2, 3])
        self.assertEqual(self.stored_seqs("b", 3), [1, 2, 3])
        self.assertEqual([(e.message.room, e.seq) for e in self.stored],
                         [("a", 1), ("b", 1), ("a", 2), ("b", 2), ("b", 3), ("a", 3)])

    def test_fresh_writer_finds_stale_head(self):
        """A writer starting over a store whose head lags (a crash) continues after the real last seq."""
        for seq in (1, 2, 3):
            self.insert_directly("lobby", seq)
        self.successResultOf(self.store.advance_rooms({"lobby": (1, T0)}))
        d = self.submit()
        self.flush()
        self.assertEqual(self.result(d)[0].seq, 4)
        self.assertEqual(self.writer.batches, 1)


class StoreDownTests(WriterTestCase):
    """Nothing is acked unless stored; after an outage the seqs continue without a gap."""

    def test_store_down_fails_every_waiter(self):
        """With the store down every sender's Deferred fails with StoreUnavailable and nothing is acked."""
        self.submit()
        self.flush()
        self.store.down = True
        ds = [self.submit(text="a", client_id="c1"), self.submit(text="b"), self.submit(room="other", text="c")]
        dup = self.submit(text="a", client_id="c1")
        self.flush()
        for d in [*ds, dup]:
            self.failureResultOf(d, StoreUnavailable)
        self.assertEqual([e.seq for e in self.stored], [1])

    def test_store_down_before_room_loaded(self):
        """A room that cannot even be loaded fails its senders with StoreUnavailable."""
        self.store.down = True
        d = self.submit()
        self.flush()
        self.failureResultOf(d, StoreUnavailable)
        self.assertEqual(self.stored, [])

    def test_resubmit_after_outage(self):
        """Once the store is back a resent message (same client_id) is stored with the next seq."""
        self.submit(client_id="c0")
        self.flush()
        self.store.down = True
        failed = self.submit(text="during outage", client_id="c1")
        self.flush()
        self.failureResultOf(failed, StoreUnavailable)
        self.store.down = False
        again = self.submit(text="during outage", client_id="c1")
        self.flush()
        message, duplicate = self.result(again)
        self.assertEqual((message.seq, duplicate), (2, False))
        more = self.submit(client_id="c2")
        self.flush()
        self.assertEqual(self.result(more)[0].seq, 3)
        self.assertEqual(self.stored_seqs("lobby", 3), [1, 2, 3])

    def test_outage_then_other_process_wrote(self):
        """After an outage, seqs another process wrote meanwhile are found taken and not reused (nor skipped)."""
        self.submit()
        self.flush()
        self.store.down = True
        failed = self.submit()
        self.flush()
        self.failureResultOf(failed, StoreUnavailable)
        self.store.down = False
        self.insert_directly("lobby", 2)
        d = self.submit()
        self.flush()
        self.assertEqual(self.result(d)[0].seq, 3)
        self.assertEqual(self.stored_seqs("lobby", 3), [1, 2, 3])


class _FailsAfterInsert(MemoryStore):
    """A store that goes down right after the next batch insert (stored or stopped), while ``armed``."""

    armed = True

    def insert_messages(self, messages):
        try:
            return super().insert_messages(messages)
        finally:
            self.down = self.armed


class PartialBatchOutageTests(SynchronousTestCase):
    """Regression: a batch stopped part-way, then the store goes down while recovering."""

    def test_unacked_ones_fail_and_can_be_resent(self):
        """Stored messages are acked, the rest get StoreUnavailable, and a resend after recovery is stored."""
        store = _FailsAfterInsert()
        clock = Clock()
        writer = MessageWriter(store, RoomBook(store), clock)
        first = writer.submit("lobby", "u1", "alice", "first", "c-first")
        clock.advance(writer_module.BATCH_WINDOW)  # the room is now known at seq 1; the store is down after that insert
        self.assertEqual(self.successResultOf(first)[0].seq, 1)
        store.down = False
        self.successResultOf(store.insert_messages([Message("lobby", 3, "u9", "other", T0, "elsewhere")]))
        store.down = False
        waiting = [writer.submit("lobby", "u1", "alice", f"m{i}", f"c{i}") for i in range(3)]
        clock.advance(writer_module.BATCH_WINDOW)  # seq 2 stored, seq 3 taken elsewhere, then the store is down
        self.assertEqual(self.successResultOf(waiting[0])[0].seq, 2)
        for d in waiting[1:]:
            self.failureResultOf(d, StoreUnavailable)
        store.down = store.armed = False  # recovered for good
        again = writer.submit("lobby", "u1", "alice", "m1", "c1")
        clock.advance(writer_module.BATCH_WINDOW)
        self.assertEqual(self.successResultOf(again)[0].seq, 4)


class PacingTests(WriterTestCase):
    """From idle a message is written at once; under load batches start a window apart."""

    def test_idle_writes_at_the_end_of_the_turn(self):
        """A message on an idle writer is stored at the end of the reactor turn, without waiting."""
        d = self.submit()
        self.clock.advance(0)
        self.assertEqual(self.result(d)[0].seq, 1)

    def test_busy_writer_spaces_batches_by_the_window(self):
        """A message right after a batch started waits until BATCH_WINDOW has passed since that start."""
        self.submit()
        self.clock.advance(0)
        second = self.submit()
        self.clock.advance(0)
        self.assertNoResult(second)
        self.clock.advance(writer_module.BATCH_WINDOW)
        self.assertEqual(self.result(second)[0].seq, 2)
        self.assertEqual(self.writer.batches, 2)


class MemoryBoundTests(WriterTestCase):
    """Issue 9, finding 4: what the writer remembers of stored messages is bounded and small."""

    def test_remembered_client_ids_do_not_keep_message_texts(self):
        """2,000 stored 4,000-emoji messages with client_ids (32 MB of text) leave the writer holding
        well under a megabyte, and a resend is still acked with the original seq."""
        import gc
        import tracemalloc

        class Forgetful(MemoryStore):
            """Stores nothing, so that only what the writer itself keeps stays in memory."""

            def insert_messages(self, messages):
                from twisted.internet.defer import succeed
                return succeed(None)

        self.store = Forgetful()
        self.rooms = RoomBook(self.store, budget=0)  # no history cache either
        self.writer = MessageWriter(self.store, self.rooms, self.clock)
        text = "\U0001F600" * 4000
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for n in range(2000):
                self.submit(text=text, client_id=f"c{n}")
                if n % 100 == 99:
                    self.clock.pump([writer_module.BATCH_WINDOW] * 5)  # a few batches of ~47 messages
            self.clock.pump([writer_module.BATCH_WINDOW] * 50)
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        self.assertLess(held, 1_500_000)
        resent = self.result(self.submit(text=text, client_id="c1999"))
        self.assertEqual((resent[0].seq, resent[1]), (2000, True))
