"""The user/revocation cache: local writes act at once, other writers are seen within the ttl."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from chatd.storage.cached import CachedStore
from chatd.storage.changes import ChangePoller
from chatd.storage.memory import MemoryStore
from chatd.storage.records import StoreUnavailable

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


class CachedStoreTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.inner = MemoryStore()
        self.store = CachedStore(self.inner, self.clock, ttl=10)
        self.reported = []
        self.poller = ChangePoller(self.inner, self.store, SimpleNamespace(
            changed=lambda jtis, ids: self.reported.append((jtis, ids))), self.clock)
        self.successResultOf(self.store.create_user("root", "r@example.com", b"h", NOW))  # the admin
        self.user = self.successResultOf(self.store.create_user("alice", "a@example.com", b"h", NOW))

    def get_user(self, user_id):
        """get_user, letting the turn end so that the batched lookup runs."""
        d = self.store.get_user(user_id)
        self.clock.advance(0)
        return d

    def test_user_served_from_cache_within_ttl(self):
        """A user read once is answered without the store for ttl seconds, then asked again."""
        self.successResultOf(self.get_user(self.user.id))
        self.inner.down = True
        self.clock.advance(9)
        self.assertEqual(self.successResultOf(self.get_user(self.user.id)).username, "alice")
        self.clock.advance(2)
        self.failureResultOf(self.get_user(self.user.id), StoreUnavailable)

    def named(self, name):
        """user_named, letting the turn end so that a batched get_user runs."""
        d = self.store.user_named(name)
        self.clock.advance(0)
        return self.successResultOf(d)

    def test_names_for_mentions_are_cached_until_any_user_changes(self):
        """``@ALICE`` twice: the store is asked once (an unknown name too); a rename here or a change seen
        elsewhere empties the names, so the old name finds nobody and the new one finds her."""
        asked = []
        real = self.inner.find_user_by_login
        self.patch(self.inner, "find_user_by_login", lambda login: asked.append(login) or real(login))
        self.assertEqual(self.named("ALICE").id, self.user.id)
        self.assertEqual(self.named("alice").id, self.user.id)
        self.assertIsNone(self.named("nobody"))
        self.assertIsNone(self.named("nobody"))
        self.assertEqual(asked, ["ALICE", "nobody"])
        self.successResultOf(self.store.update_user(self.user.id, {"username": "alicia"}))
        self.assertIsNone(self.named("alice"))
        self.assertEqual(self.named("alicia").id, self.user.id)
        self.store.forget_user(self.user.id)  # as the bus or the change feed tells of a change elsewhere
        self.named("alicia")
        self.assertEqual(asked, ["ALICE", "nobody", "alice", "alicia", "alicia"])

    def test_misses_in_one_turn_are_one_lookup(self):
        """Several users asked for in one turn are fetched in one store call; unknown ids answer None."""
        bob = self.successResultOf(self.inner.create_user("bob", "b@example.com", b"h", NOW))
        self.store.forget_user(self.user.id)
        calls = []
        real = self.inner.get_users
        self.patch(self.inner, "get_users", lambda ids: calls.append(sorted(ids)) or real(ids))
        waiting = [self.store.get_user(uid) for uid in (self.user.id, bob.id, "missing", self.user.id)]
        self.assertEqual(calls, [])
        self.clock.advance(0)
        self.assertEqual(calls, [sorted([self.user.id, bob.id, "missing"])])
        self.assertEqual([u and u.username for u in map(self.successResultOf, waiting)], ["alice", "bob", None, "alice"])

    def test_registered_and_logged_in_users_are_cached(self):
        """A user who just registered or logged in here connects next: no store round trip for that."""
        self.inner.down = True
        self.assertEqual(self.successResultOf(self.get_user(self.user.id)).username, "alice")
        self.inner.down = False
        bob = self.successResultOf(self.inner.create_user("bob", "b@example.com", b"h", NOW))
        self.assertEqual(self.successResultOf(self.store.find_user_by_login("BOB")).id, bob.id)
        self.inner.down = True
        self.assertEqual(self.successResultOf(self.get_user(bob.id)).username, "bob")

    def test_a_read_overtaken_by_a_change_does_not_cache_the_old_record(self):
        """A lookup answered after a ban made here must not put the unbanned record back."""
        self.store.forget_user(self.user.id)
        pending = []
        self.patch(self.inner, "get_users", lambda ids: pending.append(Deferred()) or pending[-1])
        waiting = self.get_user(self.user.id)
        old = self.successResultOf(self.inner.get_user(self.user.id))
        self.successResultOf(self.store.update_user(self.user.id, {"banned": True}))
        pending[0].callback([old])  # the lookup started before the ban answers now
        self.assertFalse(self.successResultOf(waiting).banned)
        self.patch(self.inner, "get_users", MemoryStore.get_users.__get__(self.inner))
        self.assertTrue(self.successResultOf(self.get_user(self.user.id)).banned)

    def test_local_writes_are_seen_at_once(self):
        """An update, a membership change or a deletion through the cache is visible immediately."""
        self.successResultOf(self.get_user(self.user.id))
        self.successResultOf(self.store.update_user(self.user.id, {"banned": True}))
        self.assertTrue(self.successResultOf(self.get_user(self.user.id)).banned)
        self.successResultOf(self.store.add_membership("lobby", self.user.id, NOW, 0))
        self.assertEqual(self.successResultOf(self.get_user(self.user.id)).rooms, ("lobby",))
        self.successResultOf(self.store.delete_user(self.user.id))
        self.assertIsNone(self.successResultOf(self.get_user(self.user.id)))

    def test_other_writers_are_seen_within_ttl(self):
        """A change made behind the cache's back (another process) shows once the ttl has passed."""
        self.successResultOf(self.get_user(self.user.id))
        self.successResultOf(self.inner.update_user(self.user.id, {"role": "admin"}))
        self.assertEqual(self.successResultOf(self.get_user(self.user.id)).role, "user")
        self.clock.advance(11)
        self.assertEqual(self.successResultOf(self.get_user(self.user.id)).role, "admin")

    def test_revocation_through_the_cache_is_immediate_and_lasting(self):
        """A token checked as valid, then revoked here, is revoked at once and stays revoked."""
        self.assertFalse(self.successResultOf(self.store.is_token_revoked("j1")))
        self.successResultOf(self.store.revoke_token("j1", NOW + timedelta(hours=1)))
        self.assertTrue(self.successResultOf(self.store.is_token_revoked("j1")))
        self.inner.down = True
        self.clock.advance(3600)
        self.assertTrue(self.successResultOf(self.store.is_token_revoked("j1")))

    def test_revocations_are_answered_from_memory_once_loaded(self):
        """After the first load the store is not asked again: revoked and unrevoked both answered."""
        self.successResultOf(self.inner.revoke_token("old", NOW.replace(year=2999)))
        self.poller.startService()
        self.addCleanup(self.poller.stopService)
        self.inner.down = True
        self.assertTrue(self.successResultOf(self.store.is_token_revoked("old")))
        self.assertFalse(self.successResultOf(self.store.is_token_revoked("fresh")))

    def test_revocation_elsewhere_is_seen_at_the_next_poll(self):
        """A token revoked by another process is refused once the cache polls (every 2 s)."""
        self.poller.startService()
        self.addCleanup(self.poller.stopService)
        self.assertFalse(self.successResultOf(self.store.is_token_revoked("j2")))
        self.successResultOf(self.inner.revoke_token("j2", NOW.replace(year=2999)))
        self.assertFalse(self.successResultOf(self.store.is_token_revoked("j2")))
        self.clock.advance(2)
        self.assertTrue(self.successResultOf(self.store.is_token_revoked("j2")))

    def test_expired_revocations_are_forgotten(self):
        """Revocations of tokens past their expiry are dropped from memory (they cannot be used anyway)."""
        self.poller.startService()
        self.addCleanup(self.poller.stopService)
        expires = datetime.fromtimestamp(self.clock.seconds() + 5, timezone.utc)
        self.successResultOf(self.store.revoke_token("short", expires))
        self.assertTrue(self.successResultOf(self.store.is_token_revoked("short")))
        self.clock.advance(6)
        self.assertFalse(self.successResultOf(self.store.is_token_revoked("short")))

    def test_user_changed_elsewhere_is_dropped_and_reported_at_the_next_poll(self):
        """A ban made by another process (or the admin CLI) shows at the next poll, and the chat hears of it."""
        reported = self.reported
        self.poller.startService()
        self.addCleanup(self.poller.stopService)
        self.assertFalse(self.successResultOf(self.get_user(self.user.id)).banned)
        self.successResultOf(self.inner.update_user(self.user.id, {"banned": True}))
        self.assertFalse(self.successResultOf(self.get_user(self.user.id)).banned)  # cached for now
        self.clock.advance(2)
        self.assertTrue(self.successResultOf(self.get_user(self.user.id)).banned)
        self.assertEqual(reported[0], ([], [self.user.id]))
