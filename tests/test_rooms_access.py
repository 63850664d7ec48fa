"""The one authorization rule (chatd.rooms.access.allows): every kind of room, every role, every need."""

from __future__ import annotations

from datetime import datetime, timezone

from twisted.trial.unittest import SynchronousTestCase

from chatd.rooms.access import JOIN, MODERATE, OWN, READ, SEE, WRITE, Standing, allows, needs_membership
from chatd.rooms.naming import direct_name, is_direct_name
from chatd.storage.records import Membership, RoomHead

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
NEEDS = (SEE, READ, JOIN, WRITE, MODERATE, OWN)


def standing(kind, role, admin=False):
    """The standing of user ``me`` with ``role`` (owner, moderator, member, None) in a room of ``kind``."""
    head = RoomHead("r", visibility=kind, owner_id="me" if role == "owner" else "someone")
    membership = None if role is None else Membership("r", "me", NOW, 0, role="member" if role == "owner" else role)
    return Standing("me", admin, head, membership)


def allowed(kind, role, admin=False):
    return {need for need in NEEDS if allows(standing(kind, role, admin), need)}


class MatrixTests(SynchronousTestCase):

    def test_public_rooms(self):
        """Public: anyone sees, reads and joins; members write; owners and moderators moderate; the owner owns;
        an admin moderates and owns without being a member."""
        self.assertEqual(allowed("public", None), {SEE, READ, JOIN})
        self.assertEqual(allowed("public", "member"), {SEE, READ, JOIN, WRITE})
        self.assertEqual(allowed("public", "moderator"), {SEE, READ, JOIN, WRITE, MODERATE})
        self.assertEqual(allowed("public", "owner"), set(NEEDS))
        self.assertEqual(allowed("public", None, admin=True), {SEE, READ, JOIN, MODERATE, OWN})

    def test_private_rooms(self):
        """Private: nothing at all for an outsider; an admin outsider may see, join and manage it but not read
        its messages until they join (and so show up as a member)."""
        self.assertEqual(allowed("private", None), set())
        self.assertEqual(allowed("private", "member"), {SEE, READ, JOIN, WRITE})
        self.assertEqual(allowed("private", "moderator"), {SEE, READ, JOIN, WRITE, MODERATE})
        self.assertEqual(allowed("private", "owner"), set(NEEDS))
        self.assertEqual(allowed("private", None, admin=True), {SEE, JOIN, MODERATE, OWN})

    def test_direct_rooms(self):
        """Direct: members see, read and write; nobody owns one; an admin outsider sees nothing (only a
        message deletion, as anywhere, is left to admins)."""
        self.assertEqual(allowed("direct", None), set())
        self.assertEqual(allowed("direct", "member"), {SEE, READ, JOIN, WRITE})
        self.assertEqual(allowed("direct", None, admin=True), {MODERATE})

    def test_a_room_without_a_record_is_public(self):
        """An unknown room, or one the store knows only by its messages, is treated as public."""
        self.assertTrue(allows(Standing("me", False, None, None), READ))
        self.assertTrue(allows(Standing("me", False, RoomHead("r"), None), JOIN))
        self.assertFalse(allows(Standing("me", False, RoomHead("r"), None), WRITE))

    def test_unknown_need_is_a_bug(self):
        """Asking for a need the rule does not know raises rather than answering yes or no."""
        with self.assertRaises(ValueError):
            allows(standing("public", None), "sing")


class NeedsMembershipTests(SynchronousTestCase):
    def test_a_skipped_membership_never_changes_the_answer(self):
        """Wherever needs_membership says the rule does not look at the membership, every role (and none)
        gets the same answer; and reading a public room is such a case, reading a private one is not."""
        for kind in ("public", "private", "direct"):
            for need in NEEDS:
                if not needs_membership(kind, need):
                    answers = {allows(standing(kind, role, admin), need)
                               for role in ("owner", "moderator", "member", None) for admin in (False, True)}
                    self.assertEqual(len(answers), 1, (kind, need))
        self.assertFalse(needs_membership("public", READ))
        self.assertTrue(needs_membership("private", READ))
        self.assertTrue(needs_membership("direct", READ))


class DirectNameTests(SynchronousTestCase):

    def test_the_same_set_in_any_order_gives_one_name(self):
        """dm- and 24 lowercase hex digits, the same for the same set of ids in any order, with repeats."""
        name = direct_name(["b", "a", "c"])
        self.assertEqual(name, direct_name(["c", "a", "b", "a"]))
        self.assertTrue(is_direct_name(name))
        self.assertRegex(name, r"^dm-[0-9a-f]{24}$")
        self.assertNotEqual(name, direct_name(["a", "b"]))
        self.assertFalse(is_direct_name("dm-general"))
