"""Mentions on the chat harness (SPEC.md, Details: Mentions; the ``mention`` frame; ``mentions`` in
/api/sessions): parsed once when stored, only readers of the room count, every socket of the mentioned
user told (joined to the room or not), the author never, and the per-membership count reset by reading."""

from __future__ import annotations

from datetime import datetime, timezone

from twisted.trial.unittest import SynchronousTestCase, TestCase

from chatd.bus import wire

from chatd.chat.mentions import MentionResolver, candidates
from chatd.storage.cached import CachedStore
from chatd.storage.memory import MemoryStore
from chatd.storage.records import Message
from tests.chatharness import ChatHarness, ChatTestCase, fired
from tests.harness import started_mongo_store
from tests.test_bus_events import TwoProcesses

NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)


class CandidateTests(SynchronousTestCase):
    def test_names_after_an_at_not_preceded_by_name_characters(self):
        """``@name`` counts at the start, after spaces and punctuation, not after a letter, digit or ``_.-``
        (an email address mentions nobody); names are lower-cased, each once, in order."""
        self.assertEqual(candidates("@Bob hi (@carol) and @bob again"), ["bob", "carol"])
        self.assertEqual(candidates("mail bob@example.com x_@dan y.@eve z-@fay 9@gus"), [])
        self.assertEqual(candidates("no at sign"), [])
        self.assertEqual(candidates(None), [])

    def test_a_trailing_dot_or_dash_is_also_tried_without_it(self):
        """"thanks @bob." may name ``bob.`` or ``bob`` (both valid usernames): both are candidates; too
        short or too long names are not."""
        self.assertEqual(candidates("thanks @bob."), ["bob.", "bob"])
        self.assertEqual(candidates("@ab @" + "x" * 33), [])

    def test_at_most_twenty_names_per_message(self):
        """A message naming more than 20 people is a list: only the first 20 names are looked up."""
        text = " ".join(f"@user{i:02d}" for i in range(30))
        self.assertEqual(len(candidates(text)), 20)


class BatchResolveTests(TestCase):
    """The writer resolves a whole write batch at once: each name and each user's memberships asked once."""

    async def test_a_batch_of_rooms_and_names_resolved_per_room_with_one_lookup_per_name(self):
        """Three drafts in public ``pub`` and private ``team`` (ann and ben members, cat not) naming ben and
        cat: in ``pub`` both are mentioned, in ``team`` only ben; a draft naming nobody is returned as is;
        ben's and cat's names are each looked up once for the batch, their memberships only for ``team``."""
        store = MemoryStore()
        users = {name: await store.create_user(name, f"{name}@example.com", b"h", NOW) for name in ("ann", "ben", "cat")}
        await store.create_room("pub", "public", "", users["ann"].id, NOW)
        await store.create_room("team", "private", "", users["ann"].id, NOW)
        await store.add_membership("team", users["ben"].id, NOW, 0)
        looked_up, asked = [], []
        find, memberships = store.find_user_by_login, store.memberships
        store.find_user_by_login = lambda login: looked_up.append(login) or find(login)
        store.memberships = lambda user_id, rooms: asked.append((user_id, rooms)) or memberships(user_id, rooms)
        plain = Message("pub", 3, users["ann"].id, "ann", NOW, "no names here")
        drafts = [Message("pub", 1, users["ann"].id, "ann", NOW, "@ben @cat in pub"),
                  Message("team", 1, users["ann"].id, "ann", NOW, "@cat @BEN in team"), plain]
        resolved = await MentionResolver(store).resolve_all(drafts)
        self.assertEqual([m.mentions for m in resolved], [("ben", "cat"), ("ben",), ()])
        self.assertEqual(resolved[1].mention_ids, (users["ben"].id,))
        self.assertIs(resolved[2], plain)
        self.assertEqual(sorted(looked_up), ["ben", "cat"])
        # Memberships of the private room only (anyone may read pub), each user asked once.
        self.assertEqual(sorted(asked), sorted([(users["ben"].id, ["team"]), (users["cat"].id, ["team"])]))


class MentionTests(ChatTestCase):
    """alice and bob joined the lobby; carol has a socket open that joined nothing."""

    def make_store(self):
        return CachedStore(MemoryStore(), self.clock)

    def setUp(self):
        super().setUp()
        self.alice, self.bob = self.chat.in_lobby("alice", "bob")
        self.carol = self.chat.connect("carol")
        self.carol.take()

    def who(self, conn):
        pending = self.chat.accounts.authenticate(conn.token)
        self.clock.advance(0)
        return fired(pending)

    def sessions(self, conn) -> dict:
        return {s["room"]: s for s in fired(self.chat.history.sessions(self.who(conn).user))}

    def test_stored_message_carries_mentions_as_registered(self):
        """``@BOB`` and ``@carol`` in alice's text: the broadcast and the stored message carry
        ``mentions: ["bob", "carol"]`` (usernames as registered, each once); unknown names are left out."""
        self.chat.say(self.alice, "hey @BOB, @carol and @bob and @nobody")
        message = self.bob.last("message")
        self.assertEqual(message["mentions"], ["bob", "carol"])
        [stored] = fired(self.store.get_messages("lobby", [1]))
        self.assertEqual(stored.mentions, ("bob", "carol"))

    def test_no_mentions_field_when_none(self):
        """A message that mentions nobody has no ``mentions`` field."""
        self.chat.say(self.alice, "hello all, mail me at alice@example.com")
        self.assertNotIn("mentions", self.bob.last("message"))

    def test_mention_frame_to_every_socket_of_the_user_joined_or_not(self):
        """carol (no join) and both of bob's sockets get ``mention`` {room, seq, user: author, text};
        the author mentioning herself gets none."""
        bob2 = self.chat.connect("bob")
        bob2.take()
        self.chat.say(self.alice, "@bob @carol @alice look")
        frame = {"type": "mention", "room": "lobby", "seq": 1, "user": "alice", "text": "@bob @carol @alice look"}
        self.assertEqual(self.carol.of_type("mention"), [frame])
        self.assertEqual(self.bob.of_type("mention"), [frame])
        self.assertEqual(bob2.of_type("mention"), [frame])
        self.assertEqual(self.alice.of_type("mention"), [])

    def test_private_room_mentions_only_its_members(self):
        """In alice's private room ``team`` (bob a member, carol not), ``@bob @carol`` mentions bob only:
        carol gets no frame and the stored message does not name her, so nothing of the room leaks."""
        fired(self.chat.catalog.create(self.who(self.alice), {"name": "team", "visibility": "private"}))
        fired(self.chat.members.invite(self.who(self.alice), "team", {"user": "bob"}))
        self.chat.join(self.alice, "team")
        self.chat.say(self.alice, "@bob @carol secret", room="team")
        self.assertEqual([f["room"] for f in self.bob.of_type("mention")], ["team"])
        self.assertEqual(self.carol.of_type("mention"), [])
        [stored] = fired(self.store.get_messages("team", [1]))
        self.assertEqual(stored.mentions, ("bob",))

    def test_sessions_count_unread_mentions_until_read(self):
        """Two messages mention bob: his lobby session says ``mentions: 2`` (alice's says 0); reading up to
        the first leaves it; reading past the latest resets it to 0, and a new mention counts 1 again."""
        self.chat.say(self.alice, "@bob one")
        self.chat.say(self.alice, "plain")
        self.chat.say(self.alice, "@bob two")
        self.assertEqual(self.sessions(self.bob)["lobby"]["mentions"], 2)
        self.assertEqual(self.sessions(self.alice)["lobby"]["mentions"], 0)
        fired(self.store.mark_read("lobby", self.bob.user_id, 1))
        self.assertEqual(self.sessions(self.bob)["lobby"]["mentions"], 2)
        self.chat.send(self.bob, type="read", room="lobby", seq=3)
        self.clock.advance(5)
        self.assertEqual(self.sessions(self.bob)["lobby"]["mentions"], 0)
        self.chat.say(self.alice, "@bob three")
        self.assertEqual(self.sessions(self.bob)["lobby"]["mentions"], 1)

    def test_a_resent_client_id_is_not_mentioned_twice(self):
        """The same client_id sent twice is stored once: one ``mention`` frame, one count."""
        self.chat.say(self.alice, "@bob once", client_id="c1")
        self.chat.say(self.alice, "@bob once", client_id="c1")
        self.assertEqual(len(self.bob.of_type("mention")), 1)
        self.assertEqual(self.sessions(self.bob)["lobby"]["mentions"], 1)


class MentionAcrossProcessesTests(TwoProcesses):
    """olive's private room ``team`` on A, with mem a member; mem's socket is on B and joined nothing."""

    def setUp(self):
        super().setUp()
        self.b = ChatHarness(self.clock, CachedStore(self.store, self.clock), network=self.network, node="b2")
        self.clock.advance(0)
        self.olive = self.a.connect("olive")
        principal = fired(self.a.accounts.authenticate(self.olive.token))
        fired(self.a.catalog.create(principal, {"name": "team", "visibility": "private"}))
        self.a.join(self.olive, "team")
        self.mem = self.b.connect("mem")
        self.out = self.b.connect("outsider")
        fired(self.a.members.invite(principal, "team", {"user": "mem"}))
        self.settle()

    def test_mention_reaches_the_user_on_the_other_process(self):
        """olive on A writes ``@mem @outsider``: mem's socket on B (which holds no state of the room) gets
        ``mention``; outsider, no member of the private room, gets nothing on either process."""
        self.a.say(self.olive, "@mem @outsider ship it", room="team")
        self.settle()
        self.assertEqual(self.mem.of_type("mention"),
                         [{"type": "mention", "room": "team", "seq": 1, "user": "olive", "text": "@mem @outsider ship it"}])
        self.assertEqual(self.out.of_type("mention"), [])


class MentionCountContract:
    """The stores keep the per-membership count (IStore.insert_messages, mark_read); mixed into a TestCase
    whose ``make_store`` returns a started store."""

    async def test_stored_mentions_are_counted_and_read_resets(self):
        """Two messages mentioning u2 (a member) and one mentioning u3 (no member) and u1 (the author): u2's
        membership counts 2 with the latest seq; u1 and u3 count nothing. A read before the latest leaves it,
        a read at it sets 0. The messages read back with their mentions."""
        store = await self.make_store()
        for user_id in ("u1", "u2"):
            await store.add_membership("lobby", user_id, NOW, 0)
        await store.insert_messages([
            Message("lobby", 1, "u1", "ann", NOW, "@bob", mentions=("bob",), mention_ids=("u2",)),
            Message("lobby", 2, "u1", "ann", NOW, "@cy @ann", mentions=("cy", "ann"), mention_ids=("u3", "u1")),
            Message("lobby", 3, "u1", "ann", NOW, "@Bob", mentions=("bob",), mention_ids=("u2",)),
        ])
        [bob] = await store.memberships("u2", ["lobby"])
        self.assertEqual((bob.mentions, bob.mention_seq), (2, 3))
        [ann] = await store.memberships("u1", ["lobby"])
        self.assertEqual(ann.mentions, 0)
        await store.mark_read("lobby", "u2", 2)
        self.assertEqual((await store.memberships("u2", ["lobby"]))[0].mentions, 2)
        await store.mark_read("lobby", "u2", 3)
        self.assertEqual((await store.memberships("u2", ["lobby"]))[0].mentions, 0)
        stored = await store.get_messages("lobby", [1, 2])
        self.assertEqual([(m.mentions, m.mention_ids) for m in stored],
                         [(("bob",), ("u2",)), (("cy", "ann"), ("u3", "u1"))])


class MemoryMentionCountTests(MentionCountContract, TestCase):
    async def make_store(self):
        return MemoryStore()


class MongoMentionCountTests(MentionCountContract, TestCase):
    timeout = 60

    async def make_store(self):
        store = await started_mongo_store(self, timeout=10)
        return store


class WireTests(SynchronousTestCase):
    def test_mentions_travel_with_a_message_on_the_bus(self):
        """A message's mentions and their ids survive the bus encoding; none stay absent."""
        message = Message("lobby", 4, "u1", "ann", NOW, "@bob", mentions=("bob",), mention_ids=("u2",))
        self.assertEqual(wire.message_in("lobby", wire.message_out(message)), message)
        plain = Message("lobby", 5, "u1", "ann", NOW, "hi")
        self.assertNotIn("mn", wire.message_out(plain))
        self.assertEqual(wire.message_in("lobby", wire.message_out(plain)), plain)
