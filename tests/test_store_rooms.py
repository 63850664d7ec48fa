"""Rooms as records, roles and the schema migration: one contract, run on MemoryStore, CachedStore and MongoStore."""

from __future__ import annotations

from datetime import timedelta

from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from chatd.rooms.ownership import Ownership
from chatd.storage.cached import CachedStore
from chatd.storage.memory import MemoryStore
from chatd.storage.records import DuplicateKey
from chatd.storage.schema import META_ID, SCHEMA_VERSION
from tests.harness import started_mongo_store
from tests.test_rooms_ownership import Interleaved
from tests.test_store_contract import NOW


class RoomContract:
    """Mixed into a TestCase whose ``make_store`` returns a started store and ``forget_schema`` makes it
    look like a store of version 1 again."""

    async def setUp(self):
        self.store = await self.make_store()

    async def test_create_room_records_it_once(self):
        """A created room reads back with its record; a second create of the name (any visibility) is a
        DuplicateKey and changes nothing."""
        head = await self.store.create_room("team", "private", "plans", "u1", NOW)
        self.assertEqual((head.name, head.visibility, head.topic, head.owner_id, head.created_at),
                         ("team", "private", "plans", "u1", NOW))
        for visibility in ("public", "direct"):
            with self.assertRaises(DuplicateKey):
                await self.store.create_room("team", visibility, "", "u2", NOW)
        again = (await self.store.room_heads(["team"]))["team"]
        self.assertEqual((again.visibility, again.owner_id, again.kind), ("private", "u1", "private"))

    async def test_concurrent_creates_give_one_record(self):
        """Two creates of one name at once: exactly one succeeds, the other is a DuplicateKey."""
        results = await defer.DeferredList([
            self.store.create_room("race", "direct", "", None, NOW),
            self.store.create_room("race", "direct", "", None, NOW)], consumeErrors=True)
        outcomes = sorted(ok for ok, _ in results)
        self.assertEqual(outcomes, [False, True])
        [failure] = [value for ok, value in results if not ok]
        self.assertTrue(failure.check(DuplicateKey))

    async def test_a_head_without_a_record_is_public_and_can_be_recorded(self):
        """A room known only by its messages or members has no record (public by default); create_room
        then records it and keeps its counts."""
        await self.store.add_membership("old", "u1", NOW, 0)
        head = (await self.store.room_heads(["old"]))["old"]
        self.assertEqual((head.visibility, head.kind, head.members), (None, "public", 1))
        recorded = await self.store.create_room("old", "public", "", "u1", NOW)
        self.assertEqual((recorded.visibility, recorded.members), ("public", 1))

    async def test_update_room_and_hand_over(self):
        """update_room sets topic and visibility; hand_room changes the owner only from the expected one."""
        await self.store.create_room("team", "public", "", "u1", NOW)
        updated = await self.store.update_room("team", {"topic": "new", "visibility": "private"})
        self.assertEqual((updated.topic, updated.visibility), ("new", "private"))
        self.assertIsNone(await self.store.update_room("nowhere", {"topic": "x"}))
        self.assertFalse(await self.store.hand_room("team", "u9", "u2"))
        self.assertTrue(await self.store.hand_room("team", "u1", "u2"))
        self.assertTrue(await self.store.hand_room("team", "u2", None))
        self.assertTrue(await self.store.hand_room("team", None, "u3"))
        self.assertEqual((await self.store.room_heads(["team"]))["team"].owner_id, "u3")

    async def test_roles(self):
        """A membership has a role (member unless given); set_role changes it; None for a non-member."""
        await self.store.add_membership("team", "u1", NOW, 0, role="moderator")
        await self.store.add_membership("team", "u2", NOW, 0)
        roles = {m.user_id: m.role for m in await self.store.room_memberships("team", 10)}
        self.assertEqual(roles, {"u1": "moderator", "u2": "member"})
        changed = await self.store.set_role("team", "u2", "moderator")
        self.assertEqual((changed.user_id, changed.role), ("u2", "moderator"))
        self.assertIsNone(await self.store.set_role("team", "u3", "moderator"))

    async def test_migration_makes_old_rooms_public_owned_by_the_earliest_member(self):
        """Rooms from before rooms had records become public, owned by their earliest member; recorded rooms
        are left alone; running it again changes nothing."""
        await self.forget_schema()
        await self.store.add_membership("old", "late", NOW + timedelta(seconds=5), 0)
        await self.store.add_membership("old", "early", NOW, 0)
        await self.store.advance_rooms({"quiet": (3, NOW)})  # messages, nobody left in it
        await self.store.create_room("new", "private", "t", "u1", NOW)
        self.assertEqual(await self.store.migrate(), SCHEMA_VERSION)
        heads = await self.store.room_heads(["old", "quiet", "new"])
        self.assertEqual((heads["old"].visibility, heads["old"].owner_id, heads["old"].created_at),
                         ("public", "early", NOW))
        self.assertEqual((heads["quiet"].visibility, heads["quiet"].owner_id), ("public", None))
        self.assertEqual((heads["new"].visibility, heads["new"].owner_id), ("private", "u1"))
        await self.store.hand_room("old", "early", "late")
        self.assertEqual(await self.store.migrate(), SCHEMA_VERSION)
        self.assertEqual((await self.store.room_heads(["old"]))["old"].owner_id, "late")

    async def test_migrations_at_once_agree(self):
        """Two migrations running at the same moment give the same result as one."""
        await self.forget_schema()
        await self.store.add_membership("old", "b", NOW, 0)
        await self.store.add_membership("old", "a", NOW, 0)  # same time: the lower user id owns it
        await defer.gatherResults([self.store.migrate(), self.store.migrate()])
        self.assertEqual((await self.store.room_heads(["old"]))["old"].owner_id, "a")

    async def test_a_hand_over_passes_over_an_heir_who_leaves_as_chosen(self):
        """chatd.rooms.ownership on this store: o leaves team (m1 moderates it, m2 is a member) and m1 leaves
        right before the hand-over writes m1 as owner: the room ends with m2, a member, as its owner."""
        store = Interleaved(self.store)
        ownership = Ownership(store, events=None)
        await self.store.create_room("team", "private", "", "o", NOW)
        for offset, user_id, role in ((0, "o", "member"), (1, "m1", "moderator"), (2, "m2", "member")):
            await self.store.add_membership("team", user_id, NOW + timedelta(seconds=offset), 0, role=role)
        await self.store.remove_membership("team", "o")

        async def m1_leaves():
            await self.store.remove_membership("team", "m1")
            await ownership.departed("team", "m1")

        store.before_hand = m1_leaves
        await ownership.departed("team", "o")
        self.assertEqual((await self.store.room_heads(["team"]))["team"].owner_id, "m2")


class MemoryRoomContract(RoomContract, TestCase):
    async def make_store(self):
        return MemoryStore()

    async def forget_schema(self):
        self.store._schema = 1


class CachedRoomContract(RoomContract, TestCase):
    """The caching layer passes rooms and roles through unchanged."""

    async def make_store(self):
        return CachedStore(MemoryStore(), reactor)

    async def forget_schema(self):
        self.store._store._schema = 1


class MongoRoomContract(RoomContract, TestCase):
    timeout = 60

    async def make_store(self):
        store = await started_mongo_store(self, timeout=5)
        return store

    async def forget_schema(self):
        """A fresh store was migrated at start: remove its version, as a store of version 1 has none."""
        await self.store._db.meta.delete_many({"_id": META_ID})

    async def test_the_version_is_recorded(self):
        """After start the store records its schema version in meta."""
        doc = await self.store._db.meta.find_one({"_id": META_ID})
        self.assertEqual(doc["version"], SCHEMA_VERSION)
