"""Unit tests for chatd.accounts.fairqueue and the address keys that feed it: no client address starves the others."""

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from chatd.accounts.fairqueue import FairQueue
from chatd.errors import ApiError
from chatd.ratelimit import address_key


class _Workers:
    """Jobs 'run' until the test finishes them; records the order they started in."""

    def __init__(self):
        self.started = []
        self.running = {}

    def start(self, job):
        self.started.append(job)
        self.running[job] = done = Deferred()
        return done

    def finish(self, job, result="done"):
        self.running.pop(job).callback(result)


class FairQueueTests(SynchronousTestCase):

    def setUp(self):
        self.workers = _Workers()
        self.queue = FairQueue(self.workers.start, slots=2, per_key=4, max_waiting=100)

    def test_runs_at_most_slots_at_once_and_hands_back_results(self):
        """Two jobs run at once; a third waits until one finishes, and each caller gets its own result."""
        results = {}
        for n in range(3):
            self.queue.submit("a", (n,)).addCallback(lambda result, n=n: results.__setitem__(n, result))
        self.assertEqual(self.workers.started, [(0,), (1,)])
        self.assertEqual((self.queue.running, self.queue.waiting, self.queue.pending), (2, 1, 3))
        self.workers.finish((0,), "zero")
        self.assertEqual(self.workers.started, [(0,), (1,), (2,)])
        self.workers.finish((1,), "one")
        self.workers.finish((2,), "two")
        self.assertEqual(results, {0: "zero", 1: "one", 2: "two"})
        self.assertEqual(self.queue.pending, 0)

    def test_a_newcomer_waits_for_one_job_per_busy_key_not_for_the_whole_queue(self):
        """Thirteen addresses each holding four logins: a fourteenth address's login starts after at most
        one more job of each of them (beyond the two running), where a first-come queue would make it
        wait for all 52."""
        for attacker in range(13):
            for n in range(4):
                self.queue.submit(f"10.0.0.{attacker}", (attacker, n))
        self.queue.submit("192.0.2.7", ("legitimate",))
        while ("legitimate",) not in self.workers.started:
            self.workers.finish(next(iter(self.workers.running)))
        self.assertLessEqual(self.workers.started.index(("legitimate",)), 13 + 2)

    def test_a_key_over_its_share_gets_429_and_others_still_get_in(self):
        """A fifth job for one key is refused with 429 (Retry-After); another key is still queued."""
        for n in range(4):
            self.queue.submit("a", (n,))
        refused = self.assertRaises(ApiError, self.queue.submit, "a", (4,))
        self.assertEqual((refused.status, refused.code), (429, "rate_limited"))
        self.assertIn("Retry-After", refused.headers)
        self.queue.submit("b", ("b",))
        self.workers.finish((0,))
        self.queue.submit("a", (5,))  # a finished job frees the key's share

    def test_without_a_share_per_key_one_key_may_queue_many(self):
        """With no ``per_key`` cap (``--auth-rate 0``), one key queues as many jobs as the queue holds."""
        queue = FairQueue(self.workers.start, slots=1, per_key=None, max_waiting=100)
        for n in range(50):
            queue.submit("proxy", (n,))
        self.assertEqual(queue.pending, 50)

    def test_full_queue_is_503(self):
        """Past max_waiting queued jobs in all, callers get 503 instead of an unbounded queue."""
        queue = FairQueue(self.workers.start, slots=1, per_key=1, max_waiting=2)
        for key in "abc":
            queue.submit(key, (key,))
        refused = self.assertRaises(ApiError, queue.submit, "d", ("d",))
        self.assertEqual((refused.status, refused.code), (503, "unavailable"))

    def test_a_failed_job_fails_its_caller_and_frees_its_slot(self):
        """A job that fails hands its failure to its caller; the next job still runs."""
        failed = []
        self.queue.submit("a", ("bad",)).addErrback(failed.append)
        self.queue.submit("a", ("next",))
        self.queue.submit("a", ("third",))
        self.workers.running.pop(("bad",)).errback(ValueError("boom"))
        self.assertEqual(len(failed), 1)
        self.assertIn(("third",), self.workers.started)


class AddressKeyTests(SynchronousTestCase):

    def test_ipv6_hosts_of_one_64_share_a_key(self):
        """Addresses in one IPv6 /64 share a budget; another /64 has its own."""
        self.assertEqual(address_key("2001:db8:1:2::1"), address_key("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        self.assertNotEqual(address_key("2001:db8:1:2::1"), address_key("2001:db8:1:3::1"))

    def test_ipv4_and_mapped_ipv4(self):
        """IPv4 addresses are their own key, also when seen as IPv4-mapped IPv6."""
        self.assertEqual(address_key("192.0.2.1"), "192.0.2.1")
        self.assertEqual(address_key("::ffff:192.0.2.1"), "192.0.2.1")
        self.assertNotEqual(address_key("192.0.2.1"), address_key("192.0.2.2"))

    def test_unix_and_odd_hosts(self):
        """No host (a Unix socket) and unparsable hosts still give a key."""
        self.assertEqual(address_key(None), "unix")
        self.assertEqual(address_key("not-an-ip"), "not-an-ip")
