"""Stopping the Mongo store (chatd.storage.mongo.MongoStore) with operations still unanswered."""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from chatd.storage.mongo import MongoStore
from chatd.storage.records import StoreUnavailable


class StopTests(SynchronousTestCase):

    def test_an_operation_waiting_at_stop_fails_as_unavailable_and_leaves_no_timer(self):
        """A request still waiting for the store when chatd stops gets StoreUnavailable (a 503, not a hang),
        and the operation's timeout does not stay scheduled after the store stopped."""
        clock = Clock()
        store = MongoStore(clock, lambda: "mongodb://127.0.0.1:1/chatd", timeout=5.0)
        store._db, store._open = object(), True  # as if started; the pool is not needed to show this
        never = defer.Deferred()
        waiting = defer.ensureDeferred(store._call(lambda: never))
        self.assertEqual(len(clock.getDelayedCalls()), 1)  # the operation's timeout
        store.running = True
        self.successResultOf(defer.ensureDeferred(store.stopService()))
        self.failureResultOf(waiting, StoreUnavailable)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_answered_operations_are_forgotten(self):
        """An answered operation is not held until stop (nothing grows with the number of requests)."""
        store = MongoStore(Clock(), lambda: "mongodb://127.0.0.1:1/chatd")
        store._db, store._open = object(), True
        for n in range(3):
            self.assertEqual(self.successResultOf(defer.ensureDeferred(store._call(lambda n=n: n))), n)
        self.assertEqual(store._in_flight, set())

    def test_an_operation_begun_after_stop_is_refused_at_once(self):
        """A request still being served after the store stopped gets StoreUnavailable at once, and no timer."""
        clock = Clock()
        store = MongoStore(clock, lambda: "mongodb://127.0.0.1:1/chatd")
        store._db, store._open = object(), True
        store.running = True
        self.successResultOf(defer.ensureDeferred(store.stopService()))
        self.failureResultOf(defer.ensureDeferred(store._call(defer.Deferred)), StoreUnavailable)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_a_caller_that_cancels_gets_a_cancellation_not_an_outage(self):
        """A request whose client left cancels its store call: that stays a CancelledError (which the REST
        layer drops silently), not StoreUnavailable (an outage nobody would handle, logged as an error)."""
        clock = Clock()
        store = MongoStore(clock, lambda: "mongodb://127.0.0.1:1/chatd")
        store._db, store._open = object(), True
        waiting = defer.ensureDeferred(store._call(defer.Deferred))
        waiting.cancel()
        self.failureResultOf(waiting, defer.CancelledError)
        self.assertEqual(clock.getDelayedCalls(), [])
