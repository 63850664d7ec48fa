"""Unit tests for chatd.chat.sequencer: a room's messages reach this process's sockets in seq order, each once."""

from datetime import datetime, timedelta, timezone

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from chatd.chat.roomstate import RoomBook
from chatd.chat.sequencer import GAP_WAIT, MAX_WAITING, Sequencer
from chatd.storage.memory import MemoryStore
from chatd.storage.records import Message

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def message(seq, room="lobby", text=None):
    return Message(room, seq, "u9", "zed", T0 + timedelta(seconds=seq), text or f"m{seq}")


class RecordingEvents:
    """What the sequencer tells: deliveries (seq, origin), acks (seq, origin) and announcements (seq)."""

    def __init__(self):
        self.delivered, self.acked, self.announced = [], [], []

    def message_stored(self, entry, origin):
        self.delivered.append((entry.seq, origin))

    def message_acked(self, message, origin):
        self.acked.append((message.seq, origin))

    def announce(self, message):
        self.announced.append(message.seq)


class SequencerTests(SynchronousTestCase):

    def setUp(self):
        self.clock = Clock()
        self.store = MemoryStore()
        self.rooms = RoomBook(self.store)
        self.events = RecordingEvents()
        self.sequencer = Sequencer(self.store, self.rooms, self.events, self.clock)

    def store_messages(self, *seqs, room="lobby"):
        self.successResultOf(self.store.insert_messages([message(seq, room) for seq in seqs]))

    def load(self, room="lobby"):
        return self.successResultOf(self.sequencer.current(room))

    def seqs(self):
        return [seq for seq, _ in self.events.delivered]

    def test_current_catches_up_and_delivers_what_others_stored(self):
        """Messages another process stored after the room was loaded are read, cached and delivered in order."""
        self.store_messages(1, 2)
        state = self.load()
        self.assertEqual((state.last_seq, self.seqs()), (2, []))  # loading starts after what exists
        self.store_messages(3, 4, 5)
        self.assertIs(self.load(), state)
        self.assertEqual(self.seqs(), [3, 4, 5])
        self.assertEqual([entry.seq for entry in state.cached(2, 5)], [3, 4, 5])

    def test_next_message_from_the_bus_is_delivered_and_duplicates_dropped(self):
        """A message with the next seq is delivered at once; the same message again is dropped."""
        self.load()
        self.sequencer.received("lobby", [message(1)])
        self.sequencer.received("lobby", [message(1)])
        self.assertEqual(self.seqs(), [1])
        self.assertEqual(self.events.announced, [])  # not ours to announce

    def test_out_of_order_arrivals_are_delivered_in_order(self):
        """3 then 2 then 1: held until the gap closes, then delivered 1, 2, 3 without reading the store."""
        self.load()
        self.sequencer.received("lobby", [message(3)])
        self.sequencer.received("lobby", [message(2)])
        self.assertEqual(self.seqs(), [])
        self.sequencer.received("lobby", [message(1)])
        self.assertEqual(self.seqs(), [1, 2, 3])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_gap_is_filled_from_the_store_after_a_moment(self):
        """A message after a gap waits GAP_WAIT; then the missing ones are read from the store, all in order."""
        self.load()
        self.store_messages(1, 2, 3)
        self.sequencer.received("lobby", [message(3)])
        self.clock.advance(GAP_WAIT * 0.9)
        self.assertEqual(self.seqs(), [])
        self.clock.advance(GAP_WAIT * 0.2)
        self.assertEqual(self.seqs(), [1, 2, 3])

    def test_a_message_stored_here_is_delivered_with_its_sender_and_announced(self):
        """The writer's message: delivered with its origin (the sender's ack goes with it) and announced."""
        self.load()
        self.sequencer.stored(message(1), "socket")
        self.assertEqual((self.events.delivered, self.events.announced), ([(1, "socket")], [1]))

    def test_a_message_stored_here_after_a_gap_waits_and_keeps_its_sender(self):
        """Another process's 1 is unknown here when our 2 is stored: 2 waits, 1 is read, then 2 goes with its origin."""
        self.load()
        self.store_messages(1, 2)
        self.sequencer.stored(message(2), "socket")
        self.assertEqual(self.events.delivered, [])
        self.clock.advance(GAP_WAIT)
        self.assertEqual(self.events.delivered, [(1, None), (2, "socket")])
        self.assertEqual(self.events.announced, [2])

    def test_a_message_already_read_from_the_store_is_only_acked_and_announced(self):
        """Our message read from the store (a catch-up) before the writer reported it: its sender gets the ack,
        the other processes the news, and nobody here gets it twice."""
        self.load()
        self.store_messages(1)
        self.load()
        self.sequencer.stored(message(1), "socket")
        self.assertEqual(self.events.delivered, [(1, None)])
        self.assertEqual((self.events.acked, self.events.announced), ([(1, "socket")], [1]))

    def test_a_room_not_held_here_ignores_the_bus(self):
        """Messages for a room nobody here holds are not kept: the room is read from the store when used."""
        self.sequencer.received("elsewhere", [message(1, "elsewhere")])
        self.assertEqual((self.seqs(), self.rooms.peek("elsewhere")), ([], None))

    def test_a_store_outage_during_a_fill_is_retried(self):
        """While the store is down the gap stays open; a second later it is filled."""
        self.load()
        self.store_messages(1, 2)
        self.store.down = True
        self.sequencer.received("lobby", [message(2)])
        self.clock.advance(GAP_WAIT)
        self.assertEqual(self.seqs(), [])
        self.store.down = False
        self.clock.advance(1)
        self.assertEqual(self.seqs(), [1, 2])

    def test_too_many_waiting_messages_are_read_from_the_store_at_once(self):
        """Past MAX_WAITING held messages, the gap is filled at once rather than holding more."""
        self.load()
        seqs = range(1, MAX_WAITING + 3)
        self.store_messages(*seqs)
        self.sequencer.received("lobby", [message(seq) for seq in seqs if seq > 1])
        self.assertEqual(self.seqs(), list(seqs))
