"""A public or private room has exactly one owner, a member, whatever happens at the same moment (SPEC.md:
Rooms and roles): an heir who leaves as they are chosen, a new owner who leaves during a hand-over by PATCH,
someone joining as the last member leaves, an admin inviting into a room nobody owns, and an owner who
deletes their account. Unit tests on the chat harness (MemoryStore, Clock); the interleavings are made by a
store that runs the other side's step right before the hand-over's conditional write."""

from __future__ import annotations

from twisted.internet.defer import ensureDeferred

from chatd.accounts.users import Users
from chatd.storage.memory import MemoryStore
from tests.chatharness import ChatTestCase, ThreadlessHasher, fired


class Interleaved:
    """A store (any IStore) that runs ``before_hand`` once, right before the next ``hand_room`` write: the
    moment a hand-over has chosen its heir and not yet written it."""

    def __init__(self, store) -> None:
        self._store = store
        self.before_hand = None  # a function (maybe async) of no arguments

    def __getattr__(self, name):
        return getattr(self._store, name)

    def hand_room(self, name, owner_was, owner_id):
        step, self.before_hand = self.before_hand, None
        if step is None:
            return self._store.hand_room(name, owner_was, owner_id)
        done = ensureDeferred(_awaited(step()))
        return done.addCallback(lambda _: self._store.hand_room(name, owner_was, owner_id))


async def _awaited(result):
    if hasattr(result, "__await__") or hasattr(result, "addCallback"):
        await result


class OwnershipCase(ChatTestCase):
    """root (the site admin); olive owns the private room ``team``, mo moderates it (invited first), mem
    is a member; every member's socket joined it."""

    def make_store(self):
        return Interleaved(MemoryStore())

    def setUp(self):
        super().setUp()
        self.root, self.olive, self.mo, self.mem = (self.chat.connect(name) for name in ("root", "olive", "mo", "mem"))
        fired(self.chat.catalog.create(self.who(self.olive), {"name": "team", "visibility": "private"}))
        fired(self.chat.members.invite(self.who(self.olive), "team", {"user": "mo", "role": "moderator"}))
        fired(self.chat.members.invite(self.who(self.olive), "team", {"user": "mem"}))
        for conn in (self.olive, self.mo, self.mem):
            self.chat.join(conn, "team")
            conn.take()

    def who(self, conn):
        """The principal behind ``conn``'s token (as a REST request would have it)."""
        return fired(self.chat.accounts.authenticate(conn.token))

    def owner(self, room: str = "team") -> str | None:
        """The username of the room's owner as GET /api/rooms/{room} shows it."""
        head = fired(self.store.room_heads([room]))[room]
        return fired(self.chat.views.one(head))["owner"]

    def members(self, room: str = "team") -> set[str]:
        """The usernames of the room's members, from the store."""
        ids = [m.user_id for m in fired(self.store.room_memberships(room, 99))]
        return {user.username for user in fired(self.store.get_users(ids))}

    def owners_announced(self, conn) -> list[str]:
        """Whom ``conn`` was told owns a room now (``member`` ``role`` ``owner`` frames), oldest first."""
        return [frame["user"] for frame in conn.of_type("member")
                if frame["event"] == "role" and frame["role"] == "owner"]


class HandOverRaceTests(OwnershipCase):

    def test_an_heir_who_leaves_as_they_are_chosen_is_passed_over(self):
        """olive leaves; right after mo (the earliest moderator) is chosen, mo leaves too: the room goes to
        mem, who is a member, and the room hears that mem, never mo, owns it."""
        self.store.before_hand = lambda: self.chat.members.remove(self.who(self.mo), "team", "mo")
        fired(self.chat.members.remove(self.who(self.olive), "team", "olive"))
        self.assertEqual((self.owner(), self.members()), ("mem", {"mem"}))
        self.assertEqual(self.owners_announced(self.mem), ["mem"])

    def test_every_heir_leaving_in_turn_leaves_the_room_empty_and_unowned(self):
        """olive leaves; mo leaves as chosen, and then mem as chosen in turn: nobody is left, nobody owns it,
        and the next to join takes it."""
        def mem_leaves():
            self.store.before_hand = None
            return self.chat.members.remove(self.who(self.mem), "team", "mem")

        def mo_leaves():
            self.store.before_hand = mem_leaves
            return self.chat.members.remove(self.who(self.mo), "team", "mo")

        self.store.before_hand = mo_leaves
        fired(self.chat.members.remove(self.who(self.olive), "team", "olive"))
        self.assertEqual((self.owner(), self.members()), (None, set()))
        self.chat.join(self.root, "team")  # an admin may join a private room
        self.assertEqual(self.owner(), "root")

    def test_a_new_owner_who_leaves_during_a_patch_never_owns_the_room(self):
        """olive makes mem owner by PATCH while mem leaves: the PATCH is a 404 (not a member), olive still
        owns the room and is still its owner in the members list."""
        self.store.before_hand = lambda: self.chat.members.remove(self.who(self.mem), "team", "mem")
        with self.assertRaises(Exception) as raised:
            fired(self.chat.members.set_role(self.who(self.olive), "team", "mem", {"role": "owner"}))
        self.assertEqual(raised.exception.status, 404)
        self.assertEqual((self.owner(), self.members()), ("olive", {"olive", "mo"}))
        listed = {m["user"]: m["role"] for m in fired(self.chat.members.listed(self.who(self.olive), "team"))}
        self.assertEqual(listed, {"olive": "owner", "mo": "moderator"})

    def test_someone_joining_as_the_last_member_leaves_takes_the_room(self):
        """The public room ``solo`` has one member, its owner olive; she leaves just as mem joins (mem read
        the room while olive still owned it): mem is then its member and its owner."""
        self.chat.join(self.olive, "solo")
        self.store.before_hand = lambda: self.chat.send(self.mem, type="join", room="solo")
        self.chat.send(self.olive, type="leave", room="solo")
        self.assertEqual(self.mem.last("joined")["room"], "solo")
        self.assertEqual((self.owner("solo"), self.members("solo")), ("mem", {"mem"}))

    def test_an_admin_inviting_into_a_room_nobody_owns_makes_the_invitee_its_owner(self):
        """Everyone leaves ``team`` (no owner left); root, not a member, invites mem: mem owns it."""
        for conn in (self.mem, self.mo, self.olive):
            self.chat.send(conn, type="leave", room="team")
        self.assertIsNone(self.owner())
        fired(self.chat.members.invite(self.who(self.root), "team", {"user": "mem"}))
        self.assertEqual(self.owner(), "mem")


class DeletedOwnerTests(OwnershipCase):

    def setUp(self):
        super().setUp()
        self.users = Users(self.store, ThreadlessHasher(), self.clock, self.chat.presence, self.chat.events,
                           self.chat.ownership)

    def test_a_deleted_owner_hands_each_of_their_rooms_over(self):
        """olive owns ``team`` (moderator mo) and the public ``pub`` (mem joined before mo); she deletes her
        account: mo owns team, mem owns pub (no moderator there: the earliest member), each room hears it,
        and rooms she only belonged to keep their owner."""
        self.chat.join(self.olive, "pub")
        self.chat.join(self.mem, "pub")
        self.clock.advance(1)
        self.chat.join(self.mo, "pub")
        self.chat.join(self.mo, "mine")
        self.chat.join(self.olive, "mine")
        fired(self.users.delete_user(self.who(self.olive), self.olive.user_id))
        self.assertEqual((self.owner("team"), self.owner("pub"), self.owner("mine")), ("mo", "mem", "mo"))
        self.assertEqual(sorted(self.owners_announced(self.mem)), ["mem", "mo"])

    def test_a_deleted_sole_member_leaves_the_room_unowned_for_the_next_to_join(self):
        """olive alone in ``solo`` deletes her account: solo has no owner (not a deleted id) and mem, joining
        next, owns it."""
        self.chat.join(self.olive, "solo")
        fired(self.users.delete_user(self.who(self.olive), self.olive.user_id))
        self.assertIsNone(fired(self.store.room_heads(["solo"]))["solo"].owner_id)
        self.chat.join(self.mem, "solo")
        self.assertEqual(self.owner("solo"), "mem")
