"""One contract, two stores: MemoryStore (unit tests' twin) and MongoStore over the wire to nx-27017."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from chatd.storage.cached import CachedStore
from chatd.storage.interface import IStore
from chatd.storage.memory import MemoryStore
from chatd.storage.records import DuplicateKey, InsertStopped, LastAdmin, Message
from tests.harness import started_mongo_store

NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)


class StoreContract:
    """Mixed into a TestCase whose ``make_store`` returns a started store."""

    async def setUp(self):
        self.store = await self.make_store()

    async def _user(self, name: str):
        return await self.store.create_user(name, f"{name}@example.com", b"$2b$hash", NOW)

    def test_provides_the_interface(self):
        """The store offers every IStore method."""
        self.assertTrue(verifyObject(IStore, self.store))

    async def test_create_and_read_back(self):
        """A created user reads back by id and by login (username or email, any case)."""
        alice = await self._user("Alice")
        self.assertEqual(alice.role, "admin")
        self.assertEqual(alice.created_at, NOW)
        self.assertEqual(await self.store.get_user(alice.id), alice)
        self.assertEqual(await self.store.find_user_by_login("ALICE"), alice)
        self.assertEqual(await self.store.find_user_by_login("alice@EXAMPLE.com"), alice)
        self.assertIsNone(await self.store.find_user_by_login("nobody"))
        self.assertIsNone(await self.store.get_user("not-an-id"))
        self.assertIsNone(await self.store.get_user("ffffffffffffffffffffffff"))

    async def test_get_users_by_ids(self):
        """get_users returns the known users among the ids; unknown and malformed ids are left out."""
        a, b = await self._user("ann"), await self._user("ben")
        found = await self.store.get_users([b.id, "ffffffffffffffffffffffff", "junk", a.id])
        self.assertEqual(sorted(user.username for user in found), ["ann", "ben"])
        self.assertEqual(await self.store.get_users([]), [])

    async def test_only_the_first_user_is_admin(self):
        """The first user is admin, the rest are users."""
        roles = [(await self._user(name)).role for name in ("one", "two", "three")]
        self.assertEqual(roles, ["admin", "user", "user"])

    async def _admins(self) -> list[str]:
        return sorted(u.username for u in await self.store.list_users(100) if u.role == "admin" and not u.banned)

    async def test_the_last_admin_cannot_be_demoted_banned_or_deleted(self):
        """Demoting, banning or deleting the only admin who is not banned fails with LastAdmin and changes
        nothing; with a second admin each works, and a banned admin does not count."""
        root = await self._user("root")
        other = await self._user("other")
        for change in ({"role": "user"}, {"banned": True}):
            with self.assertRaises(LastAdmin):
                await self.store.update_user(root.id, change)
        with self.assertRaises(LastAdmin):
            await self.store.delete_user(root.id)
        self.assertEqual(await self._admins(), ["root"])
        await self.store.update_user(other.id, {"role": "admin"})
        await self.store.update_user(other.id, {"banned": True})  # root is still an admin: fine
        with self.assertRaises(LastAdmin):
            await self.store.update_user(root.id, {"role": "user"})  # the banned admin does not count
        await self.store.update_user(other.id, {"banned": False})
        await self.store.update_user(root.id, {"role": "user"})
        self.assertEqual(await self._admins(), ["other"])
        self.assertTrue(await self.store.delete_user(root.id))
        with self.assertRaises(LastAdmin):
            await self.store.delete_user(other.id)
        await self.store.update_user(other.id, {"email": "new@example.com"})  # other changes are fine

    async def test_two_admins_demoting_themselves_at_once_leave_one(self):
        """Issue 9, finding 8: two admins giving up the role at the same moment (30 times over) never leave
        the site without an admin: exactly one of each pair succeeds."""
        first = await self._user("first")
        for round in range(30):
            second = await self._user(f"second{round}")
            await self.store.update_user(second.id, {"role": "admin"})
            results = await defer.DeferredList([
                self.store.update_user(first.id, {"role": "user"}),
                self.store.update_user(second.id, {"role": "user"}),
            ], consumeErrors=True)
            refused = [ok for ok, result in results if not ok and result.check(LastAdmin)]
            self.assertEqual(len(refused), 1, results)
            self.assertTrue(all(ok or result.check(LastAdmin) for ok, result in results), results)
            [survivor] = await self._admins()
            if survivor != "first":
                await self.store.update_user(first.id, {"role": "admin"})
                await self.store.update_user(second.id, {"role": "user"})
            self.assertEqual(await self._admins(), ["first"])

    async def test_unique_username_and_email_ignore_case(self):
        """Creating or renaming onto a taken username or email fails with DuplicateKey naming the field."""
        await self._user("bob")
        carol = await self._user("carol")
        with self.assertRaises(DuplicateKey) as name_clash:
            await self.store.create_user("BOB", "other@example.com", b"h", NOW)
        self.assertEqual(name_clash.exception.field, "username")
        with self.assertRaises(DuplicateKey) as mail_clash:
            await self.store.create_user("other", "Bob@Example.com", b"h", NOW)
        self.assertEqual(mail_clash.exception.field, "email")
        with self.assertRaises(DuplicateKey) as rename_clash:
            await self.store.update_user(carol.id, {"username": "Bob"})
        self.assertEqual(rename_clash.exception.field, "username")

    async def test_update_and_delete(self):
        """Updates return the new record; deleting removes the user once."""
        await self._user("root")  # the first user, the admin
        dan = await self._user("dan")
        updated = await self.store.update_user(dan.id, {"email": "d@example.com", "tokens_valid_after": 12.5})
        self.assertEqual((updated.email, updated.tokens_valid_after), ("d@example.com", 12.5))
        self.assertEqual(await self.store.find_user_by_login("d@example.com"), updated)
        self.assertIsNone(await self.store.update_user("ffffffffffffffffffffffff", {"email": "x@example.com"}))
        self.assertTrue(await self.store.delete_user(dan.id))
        self.assertFalse(await self.store.delete_user(dan.id))
        self.assertIsNone(await self.store.get_user(dan.id))

    async def test_user_change_feed(self):
        """Updates and deletions (not reads, not no-op updates) are listed by users_changed_since."""
        await self._user("root")  # the first user, the admin
        erin, fay = await self._user("erin"), await self._user("fay")
        before = time.time() - 1
        self.assertEqual(await self.store.users_changed_since(before), [])
        await self.store.update_user(erin.id, {"banned": True, "ban_reason": "spam"})
        await self.store.update_user(erin.id, {})
        await self.store.get_user(fay.id)
        self.assertEqual(await self.store.users_changed_since(before), [erin.id])
        await self.store.delete_user(fay.id)
        self.assertEqual(sorted(await self.store.users_changed_since(before)), sorted([erin.id, fay.id]))
        self.assertEqual(await self.store.users_changed_since(time.time() + 60), [])
        self.assertEqual((await self.store.get_user(erin.id)).ban_reason, "spam")

    async def test_list_in_creation_order_with_paging_and_ids(self):
        """list_users pages in creation order after an id, optionally among given ids."""
        users = [await self._user(f"user{i}") for i in range(5)]
        first = await self.store.list_users(2)
        self.assertEqual([u.username for u in first], ["user0", "user1"])
        rest = await self.store.list_users(10, after=first[-1].id)
        self.assertEqual([u.username for u in rest], ["user2", "user3", "user4"])
        among = await self.store.list_users(10, ids=[users[4].id, users[1].id])
        self.assertEqual([u.username for u in among], ["user1", "user4"])

    async def test_revoked_since(self):
        """revoked_since lists revocations after a moment, or every unexpired one."""
        later = datetime.now(timezone.utc) + timedelta(hours=1)
        before = time.time() - 1
        await self.store.revoke_token("a", later)
        listed = dict(await self.store.revoked_since(None))
        self.assertAlmostEqual(listed["a"], later.timestamp(), places=2)
        self.assertEqual([jti for jti, _ in await self.store.revoked_since(before)], ["a"])
        self.assertEqual(await self.store.revoked_since(before + 3600), [])

    async def test_revoked_tokens(self):
        """A revoked jti is remembered; others are not revoked."""
        # Still in the future: the store may forget revocations once the token has expired anyway (TTL index).
        await self.store.revoke_token("jti-1", datetime.now(timezone.utc) + timedelta(hours=1))
        self.assertTrue(await self.store.is_token_revoked("jti-1"))
        self.assertFalse(await self.store.is_token_revoked("jti-2"))


class FileContract:
    """Files: bytes written in pieces, visible once closed, read back in pieces, deleted."""

    async def _read_all(self, file_id, size):
        reader = await self.store.read_file(file_id)
        parts = []
        while True:
            part = await reader.read(size)
            if not part:
                return b"".join(parts)
            parts.append(part)

    async def test_file_round_trip(self):
        """A file written in pieces reads back byte for byte, in any read size, with its record; once deleted it
        is gone."""
        data = bytes(range(256)) * 3000  # 768,000 bytes: several GridFS chunks
        writer = self.store.new_file("photo.png", "image/png", "lobby", "u1", NOW)
        for start in range(0, len(data), 100_000):
            await writer.write(data[start:start + 100_000])
        self.assertIsNone(await self.store.file_info("ffffffffffffffffffffffff"))
        record = await writer.close()
        self.assertEqual((record.name, record.size, record.content_type, record.room, record.user_id),
                         ("photo.png", len(data), "image/png", "lobby", "u1"))
        self.assertEqual(await self.store.file_info(record.id), record)
        self.assertEqual(await self._read_all(record.id, 65_536), data)
        self.assertEqual(await self._read_all(record.id, 1_000_000), data)
        self.assertTrue(await self.store.delete_file(record.id))
        self.assertIsNone(await self.store.file_info(record.id))
        self.assertFalse(await self.store.delete_file(record.id))

    async def test_unfinished_files_are_not_visible(self):
        """An aborted upload leaves nothing visible; an empty file is stored with size 0."""
        writer = self.store.new_file("half.bin", "application/octet-stream", "lobby", "u1", NOW)
        await writer.write(b"x" * 1000)
        await writer.abort()
        self.assertIsNone(await self.store.file_info("not an id"))
        empty = await self.store.new_file("empty.txt", "text/plain", "lobby", "u1", NOW).close()
        self.assertEqual((await self.store.file_info(empty.id)).size, 0)
        self.assertEqual(await self._read_all(empty.id, 100), b"")


class ChatContract:
    """Messages, rooms and memberships, mixed in beside StoreContract."""

    def _message(self, seq, room="lobby", client_id=None, user_id="u1"):
        return Message(room=room, seq=seq, user_id=user_id, user="alice", ts=NOW, text=f"hello {seq}", client_id=client_id)

    async def test_messages_round_trip_by_seq(self):
        """Inserted messages read back by seq, in seq order, with their fields; missing seqs are left out."""
        await self.store.insert_messages([self._message(1, client_id="c1"), self._message(2), self._message(1, room="other")])
        got = await self.store.get_messages("lobby", [2, 1, 7])
        self.assertEqual([m.seq for m in got], [1, 2])
        self.assertEqual(got[0], self._message(1, client_id="c1"))
        self.assertEqual(got[0].id, "lobby:1")
        self.assertEqual([m.text for m in await self.store.get_messages("other", [1])], ["hello 1"])

    async def test_insert_stops_at_a_taken_seq(self):
        """An ordered insert stops at a seq already stored: the ones before are stored, none after."""
        await self.store.insert_messages([self._message(1)])
        with self.assertRaises(InsertStopped) as stopped:
            await self.store.insert_messages([self._message(2), self._message(1), self._message(3)])
        self.assertEqual((stopped.exception.index, stopped.exception.reason), (1, "seq"))
        self.assertEqual([m.seq for m in await self.store.get_messages("lobby", [1, 2, 3])], [1, 2])

    async def test_client_id_is_stored_once_per_user_and_room(self):
        """The same client_id from the same user in the same room is refused; other users or rooms may reuse it."""
        await self.store.insert_messages([self._message(1, client_id="c")])
        with self.assertRaises(InsertStopped) as stopped:
            await self.store.insert_messages([self._message(2, client_id="c")])
        self.assertEqual(stopped.exception.reason, "client_id")
        await self.store.insert_messages([self._message(2, client_id="c", user_id="u2"), self._message(1, room="b", client_id="c")])
        original = await self.store.find_client_message("lobby", "u1", "c")
        self.assertEqual(original.seq, 1)
        self.assertIsNone(await self.store.find_client_message("lobby", "u1", "nope"))

    async def test_update_message_sets_and_removes_fields(self):
        """update_message changes text and removes it for a tombstone."""
        await self.store.insert_messages([self._message(1)])
        edited = await self.store.update_message("lobby", 1, {"text": "changed", "edited_at": NOW})
        self.assertEqual((edited.text, edited.edited_at), ("changed", NOW))
        gone = await self.store.update_message("lobby", 1, {"text": None, "deleted": True})
        self.assertEqual((gone.text, gone.deleted), (None, True))
        self.assertIsNone(await self.store.update_message("lobby", 9, {"text": "x"}))

    async def test_a_deleted_message_takes_no_edit(self):
        """Issue 9, finding 10: an edit arriving after the deletion changes nothing (no text in the tombstone)."""
        await self.store.insert_messages([self._message(1)])
        await self.store.update_message("lobby", 1, {"text": None, "deleted": True})
        self.assertIsNone(await self.store.update_message("lobby", 1, {"text": "late edit", "edited_at": NOW}))
        [tombstone] = await self.store.get_messages("lobby", [1])
        self.assertEqual((tombstone.deleted, tombstone.text, tombstone.edited_at), (True, None, None))

    async def test_rename_author(self):
        """rename_author shows the new name on every message of that author, and only theirs."""
        await self.store.insert_messages([self._message(1), self._message(2, user_id="u2"), self._message(1, room="b")])
        await self.store.rename_author("u1", "renamed")
        names = [m.user for m in await self.store.get_messages("lobby", [1, 2])] + \
            [m.user for m in await self.store.get_messages("b", [1])]
        self.assertEqual(names, ["renamed", "alice", "renamed"])

    async def test_room_heads_only_advance(self):
        """advance_rooms raises last seq and time and never lowers them."""
        later = NOW + timedelta(minutes=1)
        await self.store.advance_rooms({"lobby": (5, later)})
        await self.store.advance_rooms({"lobby": (3, NOW), "b": (1, NOW)})
        heads = await self.store.room_heads(["lobby", "b", "unknown"])
        self.assertEqual((heads["lobby"].last_seq, heads["lobby"].last_message_at), (5, later))
        self.assertEqual(set(heads), {"lobby", "b"})
        self.assertEqual({room.name for room in await self.store.list_rooms()}, {"lobby", "b"})

    async def test_deleting_a_user_ends_their_memberships(self):
        """A deleted user is no longer counted as a member of their rooms."""
        await self._user("root")  # the first user, the admin
        user = await self._user("zed")
        await self.store.add_membership("lobby", user.id, NOW, 0)
        await self.store.add_membership("other", user.id, NOW, 0)
        self.assertTrue(await self.store.delete_user(user.id))
        heads = await self.store.room_heads(["lobby", "other"])
        self.assertEqual((heads["lobby"].members, heads["other"].members), (0, 0))
        self.assertEqual(await self.store.memberships(user.id, ["lobby", "other"]), [])

    async def test_room_memberships_furthest_read_first(self):
        """room_memberships lists a room's members, those read furthest first, at most ``limit``."""
        users = [await self._user(name) for name in ("ann", "ben", "cat")]
        for user, read in zip(users, (3, 9, 5)):
            await self.store.add_membership("lobby", user.id, NOW, 0)
            await self.store.mark_read("lobby", user.id, read)
        await self.store.add_membership("other", users[0].id, NOW, 0)
        found = await self.store.room_memberships("lobby", 2)
        self.assertEqual([(m.user_id, m.read_seq) for m in found], [(users[1].id, 9), (users[2].id, 5)])

    async def test_memberships(self):
        """Joining counts a member once and lists the room on the user; leaving undoes both."""
        user = await self._user("mia")
        self.assertTrue(await self.store.add_membership("lobby", user.id, NOW, 4))
        self.assertFalse(await self.store.add_membership("lobby", user.id, NOW, 9))
        self.assertEqual((await self.store.get_user(user.id)).rooms, ("lobby",))
        self.assertEqual((await self.store.room_heads(["lobby"]))["lobby"].members, 1)
        await self.store.mark_read("lobby", user.id, 7)
        await self.store.mark_read("lobby", user.id, 6)
        [membership] = await self.store.memberships(user.id, ["lobby", "other"])
        self.assertEqual((membership.joined_seq, membership.read_seq, membership.joined_at), (4, 7, NOW))
        self.assertTrue(await self.store.remove_membership("lobby", user.id))
        self.assertFalse(await self.store.remove_membership("lobby", user.id))
        self.assertEqual((await self.store.get_user(user.id)).rooms, ())
        self.assertEqual((await self.store.room_heads(["lobby"]))["lobby"].members, 0)


class MemoryStoreContract(StoreContract, ChatContract, FileContract, TestCase):
    async def make_store(self):
        return MemoryStore()


class CachedStoreContract(StoreContract, ChatContract, FileContract, TestCase):
    """The caching layer keeps the contract (every write goes through it)."""

    async def make_store(self):
        return CachedStore(MemoryStore(), reactor)


class MongoStoreContract(StoreContract, ChatContract, FileContract, TestCase):
    timeout = 60

    async def make_store(self):
        store = await started_mongo_store(self, timeout=5)
        return store
