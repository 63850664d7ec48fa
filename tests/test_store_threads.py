"""Reactions and thread summaries: one contract for MemoryStore and MongoStore over the wire to nx-27017."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from chatd.storage.cached import CachedStore
from chatd.storage.memory import MemoryStore
from chatd.storage.records import Message, TooManyKinds
from tests.harness import started_mongo_store

NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)


class ThreadContract:
    """Mixed into a TestCase whose ``make_store`` returns a started store."""

    async def setUp(self):
        self.store = await self.make_store()
        self.room = f"t-{uuid.uuid4().hex[:12]}"

    async def _put(self, *messages):
        await self.store.insert_messages(list(messages))

    def _msg(self, seq, reply_to=None):
        return Message(self.room, seq, "u1", "alice", NOW + timedelta(seconds=seq), f"m{seq}", reply_to=reply_to)

    async def test_reply_to_is_stored(self):
        """A reply reads back with its root's seq; a plain message has none."""
        await self._put(self._msg(1), self._msg(2, reply_to=1))
        one, two = await self.store.get_messages(self.room, [1, 2])
        self.assertIsNone(one.reply_to)
        self.assertEqual(two.reply_to, 1)

    async def test_thread_summary_counts_replies(self):
        """thread_reply counts replies and keeps the latest reply's time and seq, never lowering them."""
        await self._put(self._msg(1), self._msg(2, 1), self._msg(3, 1))
        await self.store.thread_reply(self.room, 1, 3, NOW + timedelta(seconds=3))
        root = await self.store.thread_reply(self.room, 1, 2, NOW + timedelta(seconds=2))
        self.assertEqual(root.thread, {"replies": 2, "last_reply_at": NOW + timedelta(seconds=3), "last_reply_seq": 3})
        (again,) = await self.store.get_messages(self.room, [1])
        self.assertEqual(again.thread, root.thread)
        self.assertIsNone(await self.store.thread_reply(self.room, 99, 3, NOW))

    async def test_concurrent_thread_replies_all_count(self):
        """Replies counted at once (as from two processes) are all counted."""
        await self._put(self._msg(1))
        await defer.gatherResults([defer.ensureDeferred(_as_coro(self.store.thread_reply(self.room, 1, s, NOW)))
                                   for s in range(2, 12)])
        (root,) = await self.store.get_messages(self.room, [1])
        self.assertEqual(root.thread["replies"], 10)
        self.assertEqual(root.thread["last_reply_seq"], 11)

    async def test_thread_replies_page_newest_first(self):
        """thread_replies answers only that root's replies below ``before``, newest first, up to ``limit``."""
        await self._put(self._msg(1), self._msg(2, 1), self._msg(3), self._msg(4, 3), self._msg(5, 1), self._msg(6, 1))
        self.assertEqual([m.seq for m in await self.store.thread_replies(self.room, 1, 2)], [6, 5])
        self.assertEqual([m.seq for m in await self.store.thread_replies(self.room, 1, 10, before=5)], [2])
        self.assertEqual([m.seq for m in await self.store.thread_replies(self.room, 3, 10)], [4])
        self.assertEqual(await self.store.thread_replies(self.room, 2, 10), [])

    async def test_react_adds_once_and_removes(self):
        """A reaction is added once (a repeat changes nothing), in order, and removed once."""
        await self._put(self._msg(1))
        message, changed = await self.store.react(self.room, 1, "👍", "ua", "alice", True)
        self.assertTrue(changed)
        message, changed = await self.store.react(self.room, 1, "👍", "ua", "alice", True)
        self.assertFalse(changed)
        message, _ = await self.store.react(self.room, 1, "🎉", "ub", "bob", True)
        message, _ = await self.store.react(self.room, 1, "👍", "ub", "bob", True)
        self.assertEqual(message.reaction_groups(), {"👍": ["alice", "bob"], "🎉": ["bob"]})
        message, changed = await self.store.react(self.room, 1, "👍", "ua", "alice", False)
        self.assertTrue(changed)
        message, changed = await self.store.react(self.room, 1, "👍", "ua", "alice", False)
        self.assertFalse(changed)
        self.assertEqual(message.reaction_groups(), {"🎉": ["bob"], "👍": ["bob"]})

    async def test_concurrent_same_reaction_is_stored_once(self):
        """The same user's same emoji added at once (as by two processes) is stored once, one add changing it."""
        await self._put(self._msg(1))
        results = await defer.gatherResults([defer.ensureDeferred(_as_coro(self.store.react(self.room, 1, "x.y", "ua", "alice", True)))
                                             for _ in range(5)])
        self.assertEqual(sum(changed for _, changed in results), 1)
        (message,) = await self.store.get_messages(self.room, [1])
        self.assertEqual(message.reactions, ("x.y ua",))

    async def test_deleted_message_takes_no_reactions_and_drops_them(self):
        """Deleting drops the reactions; a deleted or absent message answers (None, False)."""
        await self._put(self._msg(1))
        await self.store.react(self.room, 1, "👍", "ua", "alice", True)
        tomb = await self.store.update_message(self.room, 1, {"deleted": True, "text": None, "reactions": None,
                                                                  "reactors": None})
        self.assertEqual((tomb.reactions, tomb.reactors), ((), None))
        self.assertEqual(await self.store.react(self.room, 1, "👍", "ua", "alice", True), (None, False))
        self.assertEqual(await self.store.react(self.room, 7, "👍", "ua", "alice", True), (None, False))

    async def test_at_most_max_kinds_distinct_emoji_decided_in_the_store(self):
        """A new emoji past ``max_kinds`` fails with TooManyKinds; an emoji already there may still be added;
        removing an emoji's last user frees its place; two new emoji at once at the limit minus one: one wins."""
        await self._put(self._msg(1))
        for n in range(3):
            await self.store.react(self.room, 1, f"e{n}", "ua", "alice", True, 3)
        with self.assertRaises(TooManyKinds):
            await self.store.react(self.room, 1, "new", "ua", "alice", True, 3)
        _, changed = await self.store.react(self.room, 1, "e0", "ub", "bob", True, 3)
        self.assertTrue(changed)
        await self.store.react(self.room, 1, "e0", "ua", "alice", False, 3)
        with self.assertRaises(TooManyKinds):  # bob still has e0
            await self.store.react(self.room, 1, "new", "ua", "alice", True, 3)
        await self.store.react(self.room, 1, "e0", "ub", "bob", False, 3)
        await self.store.react(self.room, 1, "e1", "ua", "alice", False, 3)
        attempts = [defer.ensureDeferred(_as_coro(self.store.react(self.room, 1, emoji, "ua", "alice", True, 3)))
                    for emoji in ("x1", "x2", "x3")]
        outcomes = []
        for attempt in attempts:
            try:
                await attempt
                outcomes.append("ok")
            except TooManyKinds:
                outcomes.append("full")
        self.assertEqual(sorted(outcomes), ["full", "ok", "ok"])
        (message,) = await self.store.get_messages(self.room, [1])
        self.assertEqual(len(message.reaction_groups()), 3)

    async def test_reactions_are_by_user_and_follow_renames(self):
        """A reaction belongs to the user id: after a rename it shows the new name, and whoever takes the old
        name reacts as someone else."""
        await self._put(self._msg(1))
        await self.store.react(self.room, 1, "👍", "ua", "alice", True)
        await self.store.rename_author("ua", "alicia")
        message, changed = await self.store.react(self.room, 1, "👍", "uz", "alice", True)
        self.assertTrue(changed)
        self.assertEqual(message.reaction_groups(), {"👍": ["alicia", "alice"]})


async def _as_coro(d):
    return await d


class MemoryThreadContract(ThreadContract, TestCase):
    async def make_store(self):
        return MemoryStore()


class CachedThreadContract(ThreadContract, TestCase):
    """The caching layer passes these through."""

    async def make_store(self):
        return CachedStore(MemoryStore(), reactor)


class MongoThreadContract(ThreadContract, TestCase):
    timeout = 60

    async def make_store(self):
        store = await started_mongo_store(self, timeout=5)
        return store
