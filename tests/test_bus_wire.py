"""The bus's wire format (chatd.bus.wire): batches of events, one publish per turn."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from chatd.bus import wire


class BatchTests(SynchronousTestCase):

    def test_events_round_trip_in_order_and_name_their_sender(self):
        """A turn's events come back in order from one batch, which starts with its sender's name."""
        events = [wire.encode("node-a", "ty", r="lobby", u="1", a="alice", y=True),
                  wire.encode("node-a", "d", r="lobby", s=3)]
        [batch] = wire.batches("node-a", events)
        self.assertTrue(batch.startswith(wire.sent_by("node-a")))
        self.assertFalse(batch.startswith(wire.sent_by("node-ab")) or batch.startswith(wire.sent_by("node")))
        self.assertEqual([(e["k"], e["r"]) for e in wire.decode_batch(batch)], [("ty", "lobby"), ("d", "lobby")])

    def test_a_big_turn_is_split_under_the_limit_without_splitting_an_event(self):
        """Events adding up past MAX_BATCH go out in several publishes, each under it, all events once."""
        text = "x" * 10_000
        events = [wire.encode("n", "e", r="lobby", s=seq, x=text, t=0) for seq in range(1, 101)]
        batches = wire.batches("n", events)
        self.assertGreater(len(batches), 1)
        self.assertTrue(all(len(batch) <= wire.MAX_BATCH + 100 for batch in batches))
        seqs = [event["s"] for batch in batches for event in wire.decode_batch(batch)]
        self.assertEqual(seqs, list(range(1, 101)))

    def test_malformed_batches_raise(self):
        """Anything but a list of events with a kind and a sender is refused."""
        for junk in (b"n [not json", b"n {}", b"n [1]", b'n [{"k": "m"}]', b"n"):
            with self.subTest(junk=junk):
                self.assertRaises(ValueError, wire.decode_batch, junk)
