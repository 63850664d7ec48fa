"""Search (SPEC.md: GET /api/search, Details: Search) on both stores: a generated corpus searched through
``search_messages`` and through chatd.chat.search.Search, compared with a brute-force filter written here
from the SPEC's words (every query word begins a word of the text, case-insensitively; newest first; never
deleted messages; edits by their current text; only rooms the caller may read; ties in time by room, then seq
as a number)."""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta, timezone

from twisted.internet.task import Clock, deferLater
from txmongo import filter as qf
from twisted.trial.unittest import TestCase

from chatd import errors
from chatd.chat.search import Search, encode_cursor, parse_cursor, parse_limit, parse_q
from chatd.rooms.access import RoomAccess
from chatd.storage.memory import MemoryStore
from chatd.storage.records import Message
from chatd.storage.mongo import MongoStore
from chatd.storage.mongo_chat import _message_doc
from chatd.storage import mongo_search
from chatd.storage.mongo_search import INDEX_DELAY, SWEEP_EVERY
from tests.harness import shared_store_uri, started_mongo_store, wait_until

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
VOCABULARY = ["apple", "apricot", "Banana", "band", "bandit", "cherry", "Çava", "déjà", "x_y", "42nd", "zeta"]


def brute(messages, query: str, rooms, user_id=None) -> list[str]:
    """The ids SPEC.md says match, newest first (ties: by room, then seq as a number, larger first), by a plain scan."""
    wanted = [w.lower() for w in re.findall(r"\w+", query)]

    def hit(m):
        have = [w.lower() for w in re.findall(r"\w+", m.text or "")]
        return all(any(h.startswith(w) for h in have) for w in wanted)

    found = [m for m in messages if m.room in rooms and not m.deleted and hit(m)
             and (user_id is None or m.user_id == user_id)]
    return [m.id for m in sorted(found, key=lambda m: (m.ts, m.room, m.seq), reverse=True)]


def corpus(seed: int = 13, count: int = 300) -> list[Message]:
    """Messages in three rooms by three users, texts of 1–6 vocabulary words in mixed case and punctuation;
    some share a timestamp (ties are broken by room, then seq); they span four days (the day walk crosses days)."""
    rng = random.Random(seed)
    out, seqs = [], {"pub": 0, "team": 0, "other": 0}
    for i in range(count):
        room = rng.choice(list(seqs))
        seqs[room] += 1
        words = [rng.choice(VOCABULARY) for _ in range(rng.randint(1, 6))]
        text = rng.choice([" ", ", ", "-", "! "]).join(w.upper() if rng.random() < 0.2 else w for w in words)
        out.append(Message(room, seqs[room], f"u{rng.randint(1, 3)}", "someone", NOW + timedelta(hours=i // 3),
                           text))
    return out


class SearchContract:
    """Mixed into a TestCase whose ``make_store`` returns a started store."""

    async def setUp(self):
        self.store = await self.make_store()
        self.messages = corpus()
        for room in ("pub", "team", "other"):
            await self.store.insert_messages([m for m in self.messages if m.room == room])

    async def settle(self):
        """Wait until what was just stored is where this test class means it to be searched from."""

    async def all_pages(self, query, rooms, user_id=None, limit=7) -> list[str]:
        """Every result, page after page (cursor: the last result's (ts, room, seq))."""
        got, before = [], None
        for _ in range(1000):
            page = await self.store.search_messages(rooms, query, user_id, before, limit)
            got += [m.id for m in page]
            if len(page) < limit:
                return got
            before = (page[-1].ts, page[-1].room, page[-1].seq)
        self.fail("more than 1000 pages")

    async def test_corpus_matches_brute_force(self):
        """For queries of one and two words, prefixes, whole words, other case and unicode, and a narrowing
        to rooms and an author, the store's pages joined equal the brute-force filter, newest first."""
        rooms = ["pub", "team"]
        for q in ["ap", "apple", "APPLE band", "ban", "bandit", "déj", "ÇAV", "x_", "42", "zeta cherry ap", "nomatch"]:
            query = [w.lower() for w in re.findall(r"\w+", q)]
            expected = brute(self.messages, q, rooms)
            self.assertEqual(await self.all_pages(query, rooms), expected, q)
            self.assertEqual(q == "nomatch", not expected, q)  # the corpus exercises every query
        self.assertEqual(await self.all_pages(["ba"], ["other"], "u2"), brute(self.messages, "ba", ["other"], "u2"))

    async def test_ties_in_time_page_by_room_then_seq_as_a_number(self):
        """A burst within one millisecond (25 messages in ``lobby``, so 9 comes after 10, and 12 in ``hall``), a
        second burst a millisecond earlier and messages around them: pages of 1, 2, 3 and 7 (and postings read
        3 at a time, so a page of postings lies wholly in one millisecond) give every match once, in the
        order (ts, room, seq) newest first, seq as a number; ``pub``'s messages never."""
        burst = NOW + timedelta(days=9, milliseconds=5)
        extra = ([Message("lobby", seq, "u1", "x", burst, f"tie lobby {seq}") for seq in range(1, 26)]
                 + [Message("lobby", 25 + seq, "u2", "x", burst - timedelta(milliseconds=1), "tie early")
                    for seq in range(1, 8)]
                 + [Message("lobby", 40, "u1", "x", burst + timedelta(seconds=1), "tie later"),
                    Message("lobby", 41, "u1", "x", burst + timedelta(seconds=1), "no match here")]
                 + [Message("hall", seq, "u3", "x", burst, "tie hall") for seq in range(1, 13)]
                 + [Message("hall", 12 + seq, "u3", "x", burst - timedelta(milliseconds=1), "tie")
                    for seq in range(1, 4)])
        extra += [Message("pub", 1000 + i, "u1", "x", burst, "tie pub") for i in range(3)]
        for room in ("lobby", "hall", "pub"):
            await self.store.insert_messages([m for m in extra if m.room == room])
        await self.settle()
        rooms = ["lobby", "hall", "team"]
        expected = brute(extra, "tie", rooms)
        self.assertEqual(expected[:3], ["lobby:40", "lobby:25", "lobby:24"])
        self.assertEqual(expected[16:19], ["lobby:10", "lobby:9", "lobby:8"])
        self.assertEqual(len(expected), 25 + 7 + 1 + 12 + 3)
        for page_size in (None, 3):
            if page_size:
                self.patch(mongo_search, "PAGE", page_size)
                self.patch(mongo_search, "NARROW_PAGE", page_size)
            for limit in (1, 2, 3, 7):
                self.assertEqual(await self.all_pages(["tie"], rooms, limit=limit), expected, (page_size, limit))
            self.assertEqual(await self.all_pages(["ti", "lob"], ["lobby", "hall"], limit=4),
                             brute(extra, "ti lob", ["lobby", "hall"]))

    async def test_a_word_inside_a_word_does_not_match(self):
        """``pple`` and ``ana`` begin no word: nothing matches."""
        self.assertEqual(await self.store.search_messages(["pub", "team", "other"], ["pple"], None, None, 50), [])
        self.assertEqual(await self.store.search_messages(["pub", "team", "other"], ["ana"], None, None, 50), [])

    async def test_edits_are_searched_by_their_new_text_and_deletions_never(self):
        """An edited message matches its new words only; a deleted one matches nothing."""
        edited, deleted = [m for m in self.messages if m.room == "pub"][:2]
        await self.store.update_message("pub", edited.seq, {"text": "quokka", "edited_at": NOW})
        await self.store.update_message("pub", deleted.seq, {"deleted": True, "text": None, "edited_at": None})
        found = await self.store.search_messages(["pub"], ["quok"], None, None, 50)
        self.assertEqual([m.id for m in found], [edited.id])
        for word in {w.lower() for w in re.findall(r"\w+", f"{edited.text} {deleted.text}")}:
            ids = [m.id for m in await self.store.search_messages(["pub"], [word], None, None, 500)]
            self.assertNotIn(edited.id, ids, word)  # no vocabulary word begins "quokka"
            self.assertNotIn(deleted.id, ids, word)


class MemorySearchTests(SearchContract, TestCase):
    async def make_store(self):
        return MemoryStore()


class MongoSearchTests(SearchContract, TestCase):
    """The same on MongoStore over the wire to nx-27017 (some messages found by postings, some unindexed yet)."""

    timeout = 120

    async def make_store(self):
        store = await started_mongo_store(self, timeout=10)
        return store


class ScanMongoSearchTests(MongoSearchTests):
    """The same with no postings ever written: every message is found by the read of the unindexed."""

    async def setUp(self):
        self.patch(mongo_search.SearchIndex, "_queue_index", lambda store, ids: None)
        await super().setUp()


class IndexedMongoSearchTests(MongoSearchTests):
    """The same once every message's postings are written (the search reads postings, not the scan); the
    searches cover one to three rooms, so each room's postings of the word are read room by room (``rk``)."""

    async def settle(self):
        await wait_until(lambda: self.store._indexer is None, 60, "postings")
        left = await self.store._db.messages.count({"ix": 0})
        self.assertEqual(left, 0)

    async def setUp(self):
        await super().setUp()
        await self.settle()


class RareWordsMongoSearchTests(IndexedMongoSearchTests):
    """The same with FEW_ROOMS 0: the postings of each word the query word's prefix covers, one index-ordered
    stream per word, merged; the other query words probed by posting _id before a message is fetched."""

    async def setUp(self):
        self.patch(mongo_search, "FEW_ROOMS", 0)
        await super().setUp()


class RangeMongoSearchTests(RareWordsMongoSearchTests):
    """The same with MAX_WORDS 0: every prefix covers too many words, so its postings are read as one sorted
    ``w`` range."""

    async def setUp(self):
        self.patch(mongo_search, "MAX_WORDS", 0)
        await super().setUp()


class UnprobedMongoSearchTests(RareWordsMongoSearchTests):
    """The same with MAX_PROBED -1: the other query words are never probed, every candidate message is
    fetched and checked."""

    async def setUp(self):
        self.patch(mongo_search, "MAX_PROBED", -1)
        await super().setUp()


class CommonWordsMongoSearchTests(IndexedMongoSearchTests):
    """The same with every word counted as common (COMMON, SPARSE_PROBE and LEAD_PROBE 1), read room by room
    (``rk``)."""

    async def setUp(self):
        for name in ("LEAD_PROBE", "COMMON", "SPARSE_PROBE"):
            self.patch(mongo_search, name, 1)
        await super().setUp()


class CommonWordsDayWalkMongoSearchTests(CommonWordsMongoSearchTests):
    """The same with FEW_ROOMS 1 and MAX_WORDS 0: a search of two or more rooms reads the word's postings day
    by day (``k``)."""

    async def setUp(self):
        self.patch(mongo_search, "FEW_ROOMS", 1)
        self.patch(mongo_search, "MAX_WORDS", 0)
        await super().setUp()


class SweepTests(TestCase):
    """A process that dies leaves messages at ix 0 that nobody will index: every running process sweeps them."""

    timeout = 120

    async def test_messages_a_dead_process_left_unindexed_are_swept_on_the_clock(self):
        """Every SWEEP_EVERY seconds the ix 0 messages older than SWEEP_AGE get their postings (and are then
        found through them); a younger one is left to its writer's queue until a later sweep."""
        clock = Clock()
        clock.advance(NOW.timestamp())
        store = MongoStore(clock, shared_store_uri, timeout=10)
        store.startService()
        self.addCleanup(store.stopService)
        await wait_until(lambda: store.ready, 20, "the store's indexes and migrations")
        # As a writer that died after the ack leaves them: stored at ix 0, never queued for postings.
        old = Message("pub", 1, "u1", "ann", NOW - timedelta(hours=1), "wombat old")
        young = Message("pub", 2, "u1", "ann", NOW + timedelta(seconds=SWEEP_EVERY - 1), "wombat young")
        await store._db.messages.insert_many([_message_doc(old), _message_doc(young)])
        # Edited through $set, which nx-27017 keeps as text: the sweep reads it all the same.
        await store._db.messages.update_one({"_id": old.id}, {"$set": {"edited_at": NOW - timedelta(minutes=50)}})

        async def indexed(message):
            return (await store._db.messages.find_one({"_id": message.id}))["ix"] == 1

        async def indexed_soon(message):
            clock.advance(INDEX_DELAY)  # the indexer gathers a batch for this long before it writes
            return await indexed(message)

        clock.advance(SWEEP_EVERY)
        await wait_until(lambda: indexed_soon(old), 30, "the old message's postings")
        self.assertFalse(await indexed(young))  # a few seconds old: still its writer's
        clock.advance(SWEEP_EVERY)
        await wait_until(lambda: indexed_soon(young), 30, "the young message's postings")
        self.assertEqual(await store._db.postings.count({"w": "wombat"}), 2)
        found = await store.search_messages(["pub"], ["womb"], None, None, 10)
        self.assertEqual([m.id for m in found], [young.id, old.id])


class AdminStoreTests(TestCase):
    """chatd-admin's store (sweep=False) never indexes: a backup or a ban must not start writing postings."""

    timeout = 60

    async def test_a_store_opened_without_sweeping_leaves_unindexed_messages_alone(self):
        """An ix 0 message an hour old stays ix 0 through a sweep period on the Clock."""
        clock = Clock()
        clock.advance(NOW.timestamp())
        store = MongoStore(clock, shared_store_uri, timeout=10, sweep=False)
        store.startService()
        self.addCleanup(store.stopService)
        await wait_until(lambda: store.ready, 20, "the store's indexes and migrations")
        old = Message("pub", 7, "u1", "ann", NOW - timedelta(hours=1), "numbat old")
        await store._db.messages.insert_many([_message_doc(old)])
        from twisted.internet import reactor
        clock.advance(SWEEP_EVERY)
        await deferLater(reactor, 1.0)  # a sweep's read of the store would have answered by now
        clock.advance(INDEX_DELAY)
        await deferLater(reactor, 1.0)  # and the indexer it started would have written
        self.assertIsNone(store._indexer)
        self.assertEqual((await store._db.messages.find_one({"_id": old.id}))["ix"], 0)


class ParameterTests(TestCase):
    def test_q_limit_and_cursor_are_checked(self):
        """q: 1–200 characters with a word; limit 1–50; a cursor only as search makes them: else 400."""
        for bad in (None, "", "x" * 201, "!!! ---"):
            with self.assertRaises(errors.ApiError) as e:
                parse_q(bad)
            self.assertEqual(e.exception.status, 400)
        self.assertEqual(parse_q("Hello, WORLD hello"), ["hello", "world"])
        for bad in ("0", "51", "-1", "x", "1e1"):
            self.assertRaises(errors.ApiError, parse_limit, bad)
        self.assertEqual((parse_limit(None), parse_limit("50")), (20, 50))
        for bad in ("", "not a cursor", "bnVsbA", "W10", "WyJ4IiwxXQ", encode_cursor(NOW, "nocolon"),
                    encode_cursor(NOW, "lobby:x"), encode_cursor(NOW, "lo:bby:1"), encode_cursor(NOW, ":1")):
            self.assertRaises(errors.ApiError, parse_cursor, bad)
        self.assertEqual(parse_cursor(encode_cursor(NOW, "lobby:9")), (NOW, "lobby", 9))


class ReadableRoomsTests(TestCase):
    """Search over MemoryStore, through the access rule: ``team`` is private (u1 a member), ``pub`` public,
    ``other`` a direct room of others."""

    async def setUp(self):
        self.store = MemoryStore()
        self.messages = corpus()
        for room in ("pub", "team", "other"):
            await self.store.insert_messages([m for m in self.messages if m.room == room])
        self.users = {}
        for name in ("ann", "ben", "cat"):
            self.users[name] = await self.store.create_user(name, f"{name}@example.com", b"h", NOW)
        await self.store.create_room("pub", "public", "", self.users["ann"].id, NOW)
        await self.store.create_room("team", "private", "", self.users["ann"].id, NOW)
        await self.store.create_room("other", "direct", "", None, NOW)
        await self.store.add_membership("team", self.users["ben"].id, NOW, 0)
        self.search = Search(self.store, RoomAccess(self.store))

    async def caller(self, name):
        return await self.store.get_user(self.users[name].id)

    async def results(self, name, q, **narrow) -> list[str]:
        got, before = [], None
        while True:
            page = await self.search.search(await self.caller(name), q, narrow.get("room"), narrow.get("author"),
                                            "9", before)
            got += [r["id"] for r in page["results"]]
            if page["next"] is None:
                return got
            before = page["next"]

    async def test_only_readable_rooms_are_searched(self):
        """ben (a member of team) finds pub and team messages; cat finds pub only; neither finds the direct
        room of others; both equal the brute-force filter over what they may read."""
        self.assertEqual(await self.results("ben", "ba"), brute(self.messages, "ba", ["pub", "team"]))
        self.assertEqual(await self.results("cat", "ba"), brute(self.messages, "ba", ["pub"]))

    async def test_room_narrowing_refuses_an_unreadable_room(self):
        """``room=team`` for cat is a 404 (as if it did not exist); for ben it narrows to team."""
        with self.assertRaises(errors.ApiError) as e:
            await self.results("cat", "ba", room="team")
        self.assertEqual(e.exception.status, 404)
        self.assertEqual(await self.results("ben", "ba", room="team"), brute(self.messages, "ba", ["team"]))

    async def test_from_narrows_to_an_author_and_an_unknown_one_finds_nothing(self):
        """``from`` is a username (any case); an unknown username answers no results, not an error."""
        await self.store.insert_messages([Message("pub", 1000, self.users["ann"].id, "ann", NOW, "banana split")])
        self.assertEqual(await self.results("cat", "banana split", author="ANN"), ["pub:1000"])
        self.assertEqual(await self.results("cat", "banana", author="nobody"), [])


class MigrationTests(TestCase):
    """Schema version 3 on MongoStore over nx-27017: messages stored before search become searchable."""

    timeout = 60

    async def test_old_messages_get_their_words(self):
        """Messages written without ``words`` (as version 2 stored them; one deleted) are found after the
        migration runs again, the deleted one not; a second run changes nothing."""
        store = await started_mongo_store(self, timeout=10)
        await store._db.messages.insert_many([
            {"_id": "old:1", "room": "old", "seq": 1, "user_id": "u1", "user": "ann", "ts": NOW, "text": "Legacy Pelican",
             "dedupe": "none:1"},
            {"_id": "old:2", "room": "old", "seq": 2, "user_id": "u1", "user": "ann", "ts": NOW, "deleted": True,
             "dedupe": "none:2"}])
        await store._db.meta.delete_many({"_id": "schema"})
        self.assertEqual(await store.search_messages(["old"], ["pel"], None, None, 10), [])
        await store.migrate()
        await store.migrate()
        self.assertEqual([m.id for m in await store.search_messages(["old"], ["pel", "leg"], None, None, 10)], ["old:1"])
        self.assertNotIn("words", await store._db.messages.find_one({"_id": "old:2"}))

    async def test_version_4_drops_the_words_index_that_version_3_made(self):
        """A version 3 store has an index on the messages' words array, which only costs writes once postings
        answer searches: the migration to version 4 drops it, and migrating again is not an error."""
        store = await started_mongo_store(self, timeout=10)
        async def keys():  # by key: nx-27017 names indexes its own way
            return [list(spec["key"]) for spec in (await store._db.messages.index_information()).values()]

        await store._db.messages.create_index(qf.sort(qf.ASCENDING("words")), name="words")
        self.assertIn(["words"], await keys())
        await store._db.meta.delete_many({"_id": "schema"})
        await store.migrate()
        await store.migrate()
        self.assertNotIn(["words"], await keys())
        self.assertIn(["ix"], await keys())


class IndexerPaceTests(TestCase):
    """The indexer takes at most a third of the store's time, so messages being sent never queue behind it."""

    def test_the_indexer_rests_twice_as_long_as_each_batch_took(self):
        """Messages queued within INDEX_DELAY go in one batch; with more than a batch queued, the second batch
        starts only 2 × the first's duration after it ended."""
        from chatd.storage import mongo_search

        clock = Clock()
        started = []

        class Indexer(mongo_search.SearchIndex):
            _reactor, _open = clock, True

            async def _index_ids(self, ids):
                started.append((clock.seconds(), len(ids)))
                clock.advance(0.1)  # the store takes 0.1 s over this batch

        indexer = Indexer()
        indexer._queue_index([f"pub:{n}" for n in range(mongo_search.INDEX_BATCH - 1)])
        clock.advance(mongo_search.INDEX_DELAY / 2)
        indexer._queue_index(["pub:a", "pub:b"])  # within the delay: the same first batch
        self.assertEqual(started, [])
        clock.advance(mongo_search.INDEX_DELAY / 2)
        delay = mongo_search.INDEX_DELAY
        self.assertEqual(started, [(delay, mongo_search.INDEX_BATCH)])
        clock.advance(0.19)
        self.assertEqual(len(started), 1)  # still resting
        clock.advance(0.011)
        self.assertEqual([(round(at - delay, 2), n) for at, n in started[1:]], [(0.3, 1)])
        self.assertIsNone(indexer._indexer)  # the queue is empty: no rest after the last batch
