"""Unit tests for chatd.ratelimit: SPEC.md's ``--auth-rate``/``--socket-rate`` values and their buckets."""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from chatd.ratelimit import KeyedRateLimiter, Rate, TokenBucket


class RateParseTests(SynchronousTestCase):
    """``Rate.parse`` reads the option syntax ``RATE/s,BURST``, ``RATE/m,BURST`` or ``0``."""

    def test_per_second(self):
        """``5/s,20`` (the auth default) allows 5 per second with a burst of 20."""
        self.assertEqual(Rate.parse("5/s,20"), Rate(5.0, 20))

    def test_per_minute(self):
        """``30/m,5`` is half a token per second with a burst of 5."""
        self.assertEqual(Rate.parse("30/m,5"), Rate(0.5, 5))

    def test_spaces_tolerated(self):
        """Spaces around the value and after the comma are accepted."""
        self.assertEqual(Rate.parse(" 20/s, 50 "), Rate(20.0, 50))

    def test_zero_is_unlimited(self):
        """``0`` turns the limit off."""
        rate = Rate.parse("0")
        self.assertTrue(rate.unlimited)

    def test_invalid_strings(self):
        """Malformed or non-positive values are refused with ValueError."""
        for text in ["", "5", "5/s", "5/h,20", "s/5,20", "-1/s,5", "0/s,5", "5/s,0", "5/s,20,1", "abc"]:
            with self.subTest(text=text):
                self.assertRaises(ValueError, Rate.parse, text)


class TokenBucketTests(SynchronousTestCase):
    """One bucket spends its burst, then tells how long to wait."""

    def test_burst_then_wait(self):
        """After the burst, ``take`` answers the seconds until the next token."""
        bucket = TokenBucket(Rate(2, 3), now=0)
        self.assertEqual([bucket.take(0) for _ in range(3)], [0, 0, 0])
        self.assertAlmostEqual(bucket.take(0), 0.5)

    def test_refused_take_costs_nothing(self):
        """Refused attempts do not push the next allowed moment further away."""
        bucket = TokenBucket(Rate(2, 1), now=0)
        bucket.take(0)
        for _ in range(5):
            bucket.take(0.1)
        self.assertEqual(bucket.take(0.5), 0)


class KeyedRateLimiterTests(SynchronousTestCase):
    """Per-key buckets on an injected clock."""

    def setUp(self):
        self.clock = Clock()

    def test_burst_then_refusal(self):
        """``5/s,20``: twenty requests pass, the 21st must wait 0.2 s."""
        limiter = KeyedRateLimiter(Rate.parse("5/s,20"), self.clock)
        self.assertEqual([limiter.take("10.0.0.1") for _ in range(20)], [0] * 20)
        self.assertAlmostEqual(limiter.take("10.0.0.1"), 0.2)

    def test_refill_over_time(self):
        """Waiting the announced time makes the next request pass; the bucket never exceeds its burst."""
        limiter = KeyedRateLimiter(Rate(1, 2), self.clock)
        limiter.take("a")
        limiter.take("a")
        self.assertAlmostEqual(limiter.take("a"), 1.0)
        self.clock.advance(1.0)
        self.assertEqual(limiter.take("a"), 0)
        self.clock.advance(100)
        self.assertEqual([limiter.take("a") for _ in range(2)], [0, 0])
        self.assertGreater(limiter.take("a"), 0)

    def test_keys_independent(self):
        """One client using up its budget does not limit another."""
        limiter = KeyedRateLimiter(Rate(1, 1), self.clock)
        limiter.take("a")
        self.assertGreater(limiter.take("a"), 0)
        self.assertEqual(limiter.take("b"), 0)

    def test_unlimited(self):
        """Rate ``0`` never refuses and keeps no buckets."""
        limiter = KeyedRateLimiter(Rate.parse("0"), self.clock)
        self.assertEqual([limiter.take("a") for _ in range(1000)], [0] * 1000)
        self.assertEqual(len(limiter), 0)

    def test_prune_forgets_full_buckets(self):
        """Keys whose buckets have refilled are forgotten, so memory stays bounded."""
        limiter = KeyedRateLimiter(Rate(1, 1), self.clock, prune_at=3)
        for key in ["a", "b", "c"]:
            limiter.take(key)
        self.clock.advance(1)
        limiter.take("d")
        self.assertEqual(len(limiter), 1)

    def test_prune_keeps_active_buckets(self):
        """Pruning keeps the keys still being limited, so they cannot escape by crowding."""
        limiter = KeyedRateLimiter(Rate(1, 1), self.clock, prune_at=2)
        limiter.take("a")
        limiter.take("b")
        limiter.take("c")
        self.assertEqual(len(limiter), 3)
        self.assertGreater(limiter.take("a"), 0)
