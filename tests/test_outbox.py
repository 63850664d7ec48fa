"""Unit tests for chatd.web.outbox.Outbox: a stalled reader's buffer is bounded (SPEC.md, Guarantees; Details: Slow consumers)."""

from twisted.internet.interfaces import IPushProducer
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from chatd.web.outbox import Outbox


class OutboxTests(SynchronousTestCase):
    def setUp(self):
        self.transport = StringTransport()
        self.overflows = []
        self.outbox = Outbox(self.transport.write, 10, self.on_overflow)

    def on_overflow(self):
        # What the outbox looks like when it gives up: already closed and emptied.
        self.overflows.append((self.outbox.closed, self.outbox.size))

    def test_is_push_producer(self):
        """The outbox is a push producer, so Twisted can pause it when the peer stops reading."""
        self.assertTrue(verifyObject(IPushProducer, self.outbox))

    def test_writes_through_when_not_paused(self):
        """A reading peer gets each frame written at once; nothing is queued."""
        self.outbox.push(b"one", False)
        self.outbox.push(b"two", True)
        self.assertEqual(self.transport.value(), b"onetwo")
        self.assertEqual(self.outbox.size, 0)
        self.assertEqual(self.outbox.peak, 0)

    def test_frames_wait_while_paused(self):
        """While paused, frames wait in the outbox instead of reaching the transport."""
        self.outbox.pauseProducing()
        self.outbox.push(b"abc", False)
        self.outbox.push(b"de", True)
        self.assertEqual(self.transport.value(), b"")
        self.assertEqual(self.outbox.size, 5)

    def test_resume_flushes_in_order(self):
        """Resuming writes every waiting frame in order, then writes go straight through again."""
        self.outbox.pauseProducing()
        for data in (b"a", b"bb", b"ccc"):
            self.outbox.push(data, data == b"bb")
        self.outbox.resumeProducing()
        self.assertEqual(self.transport.value(), b"abbccc")
        self.assertEqual(self.outbox.size, 0)
        self.assertFalse(self.outbox.paused)
        self.outbox.push(b"d", False)
        self.assertEqual(self.transport.value(), b"abbcccd")

    def test_pause_during_resume(self):
        """If the transport pauses again while flushing, the rest waits, still in order."""
        class PausingTransport(StringTransport):
            """Like Twisted's transports: its buffer fills and it pauses its producer on each write."""

            producer = None

            def write(self, data):
                super().write(data)
                self.producer.pauseProducing()

        transport = PausingTransport()
        outbox = transport.producer = Outbox(transport.write, 10, self.on_overflow)
        outbox.pauseProducing()
        for data in (b"1", b"2", b"3"):
            outbox.push(data, False)
        outbox.resumeProducing()
        self.assertEqual(transport.value(), b"1")
        self.assertEqual(outbox.size, 2)
        outbox.resumeProducing()
        self.assertEqual(transport.value(), b"12")
        outbox.resumeProducing()
        self.assertEqual(transport.value(), b"123")
        self.assertEqual(outbox.size, 0)

    def test_push_while_paused_after_partial_flush_keeps_order(self):
        """A frame pushed while older ones still wait is queued behind them, never sent ahead."""
        self.outbox.pauseProducing()
        self.outbox.push(b"a", False)
        self.outbox.push(b"b", False)
        self.outbox.resumeProducing()
        self.outbox.pauseProducing()
        self.outbox.push(b"c", False)
        self.outbox.resumeProducing()
        self.assertEqual(self.transport.value(), b"abc")

    def test_within_limit_nothing_dropped(self):
        """Up to the limit every frame is kept, droppable or not."""
        self.outbox.pauseProducing()
        self.outbox.push(b"tttt", True)
        self.outbox.push(b"mmmmmm", False)
        self.assertEqual(self.outbox.size, 10)
        self.outbox.resumeProducing()
        self.assertEqual(self.transport.value(), b"ttttmmmmmm")
        self.assertEqual(self.overflows, [])

    def test_droppable_dropped_first(self):
        """Past the limit typing/read frames are dropped and the others kept, in order."""
        self.outbox.pauseProducing()
        self.outbox.push(b"t1", True)
        self.outbox.push(b"m1m1", False)
        self.outbox.push(b"t2", True)
        self.outbox.push(b"m2m2", False)  # 12 bytes > 10: the droppable ones go
        self.assertEqual(self.outbox.size, 8)
        self.assertFalse(self.outbox.closed)
        self.assertEqual(self.overflows, [])
        self.outbox.resumeProducing()
        self.assertEqual(self.transport.value(), b"m1m1m2m2")

    def test_droppable_frame_that_overflows_is_dropped(self):
        """A droppable frame arriving when the outbox is full is itself dropped; the socket stays."""
        self.outbox.pauseProducing()
        self.outbox.push(b"m" * 9, False)
        self.outbox.push(b"tt", True)
        self.assertEqual(self.outbox.size, 9)
        self.assertFalse(self.outbox.closed)
        self.assertEqual(self.overflows, [])

    def test_overflow_after_dropping_is_not_enough(self):
        """When dropping typing/read does not suffice, overflow is called once, with the queue discarded."""
        self.outbox.pauseProducing()
        self.outbox.push(b"tt", True)
        self.outbox.push(b"mmmmm", False)
        self.outbox.push(b"nnnnnn", False)  # 13 bytes; 11 without the droppable frame: still too many
        self.assertEqual(self.overflows, [(True, 0)])
        self.assertTrue(self.outbox.closed)
        self.assertEqual(self.outbox.size, 0)
        self.outbox.push(b"more", False)
        self.outbox.push(b"x" * 100, False)
        self.outbox.resumeProducing()
        self.assertEqual(self.overflows, [(True, 0)])
        self.assertEqual(self.transport.value(), b"")

    def test_push_after_discard_ignored(self):
        """Once discarded (the socket is closing), pushes reach neither the queue nor the transport."""
        self.outbox.discard()
        self.outbox.push(b"late", False)
        self.assertEqual(self.transport.value(), b"")
        self.assertEqual(self.outbox.size, 0)
        self.assertEqual(self.overflows, [])

    def test_stop_producing_discards(self):
        """When the transport stops the producer, the waiting frames are thrown away."""
        self.outbox.pauseProducing()
        self.outbox.push(b"abc", False)
        self.outbox.stopProducing()
        self.outbox.resumeProducing()
        self.assertTrue(self.outbox.closed)
        self.assertEqual(self.transport.value(), b"")
        self.assertEqual(self.outbox.size, 0)

    def test_peak_recorded(self):
        """The largest backlog is recorded (``peak``), including what was then dropped, and never lowered."""
        self.outbox.pauseProducing()
        self.outbox.push(b"abc", False)
        self.assertEqual(self.outbox.peak, 3)
        self.outbox.push(b"tttttttt", True)  # 11 bytes, then the droppable frame goes
        self.assertEqual(self.outbox.peak, 11)
        self.assertEqual(self.outbox.size, 3)
        self.outbox.resumeProducing()
        self.assertEqual(self.outbox.peak, 11)
