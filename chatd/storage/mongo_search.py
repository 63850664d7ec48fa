"""Search over a postings collection (a mixin of :class:`chatd.storage.mongo.MongoStore`).

nx-27017, the embedded store, has no multikey index: a query on the ``words``
array scans every message (about 15 s over 200,000). So each message's words are
also kept as postings, one document ``{_id: "room:seq:word", w, k, rk, t, r, s}``
per (word, message), ``t`` the message's time in epoch milliseconds, indexed
``(w, t desc, r desc, s desc)``: a query word's prefix range is an index range on
any MongoDB, in the results' order (newest first, ties by room, then seq as a
number). How they are read (word streams, ``rk`` room by room for a few rooms,
``k`` day by day for a common prefix of many words, other query words probed by
``_id``): chatd.storage.mongo_postings and ``_search``. Postings cost ~12
writes a message, too slow for the ack path, so they are written after it,
in small batches, by one indexer per process that rests twice as long as
each batch took (nx-27017 serves one request at a time: a message being sent
never waits long behind the index, which lags under a heavy load instead). A message is stored with ``ix: 0``
("not indexed yet") and gets ``ix: 1`` once its postings are in; search also
reads the few ``ix: 0`` messages (by equality on the ``ix`` index), so a
message is found from the moment it is acked. An edit deletes the message's
postings (by ``_id``: its old words) and sets ``ix: 0`` again. A process that
dies leaves its queue at ``ix: 0``: every running process sweeps, at start and every ``SWEEP_EVERY``
seconds, the ``ix: 0`` messages older than ``SWEEP_AGE`` (by ``ts`` or
``edited_at``: younger ones are still in their writer's queue), read by
equality on the ``ix`` index. Schema version 4 marks older messages ``ix: 0``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError
from twisted.internet import defer
from twisted.internet.task import LoopingCall, deferLater
from twisted.logger import Logger
from txmongo import filter as qf

from chatd.storage.mongo_postings import AFTER_ROOMS, Walk
from chatd.storage.posting_time import DAY_MS, EPOCH as _EPOCH, MS as _MS, aware as _aware, day as _day, day_key, millis
from chatd.storage.words import successor, words

INDEX_BATCH = 50  # messages whose postings are written per round trip: ~90 ms of nx-27017's time
# The indexer rests this many times as long as each batch took, so it takes at most a third of the store's time
# and the messages being sent (the store serves one request at a time on nx-27017) never wait long behind it.
INDEX_REST = 2.0
# The indexer starts this long after a message is queued, so the messages of that second go in one batch: four
# round trips a batch, not a message (20 msgs/s indexed one by one cost 25 % more chatd CPU per delivery).
# Until then a message is found by the scan of unindexed messages.
INDEX_DELAY = 1.0
PAGE = 200  # postings read per page while searching
MAX_WORDS = 16  # a query word whose prefix covers at most this many words is read word by word (in index order)
NARROW_PAGE = 1000  # the same when the other query words are probed first (no message read for a miss)
MAX_PROBED = 8  # another query word covering at most this many words is probed by posting _id
SPARSE_PROBE = 10000  # a lead narrowed by other words is common only from this many postings
COMMON = 2000  # a lone query word is common from this many postings
FEW_ROOMS = 8  # a common word searched in this many rooms or fewer is read room by room (rk), not day by day
LEAD_PROBE = 1000  # postings counted per query word to pick the rarest (a count costs ~9 µs a posting on nx)
SWEEP_EVERY = 60.0  # seconds between two sweeps of the messages nobody is indexing
SWEEP_LIMIT = 5000  # messages queued per sweep (another sweep follows when they are done)
UNINDEXED = 5000  # unindexed messages a search reads (more only after a migration or a long indexer outage)
SWEEP_AGE = 30.0  # an ix 0 message younger than this is left to its writer's queue
_log = Logger()


class SearchIndex:
    """Postings writes (after the ack) and the search that reads them."""

    _index_queue: list | None = None
    _indexer: defer.Deferred | None = None
    _known_days: tuple[int, int] | None = None  # the days this process has written into meta "postings"

    def _queue_index(self, ids: list[str]) -> None:
        """Index these messages soon, in this process's one indexer (never awaited by the writer)."""
        if self._index_queue is None:
            self._index_queue = []
        self._index_queue.extend(ids)
        if self._indexer is None:
            self._indexer = defer.ensureDeferred(self._index_loop())

    async def _index_loop(self) -> None:
        try:
            await deferLater(self._reactor, INDEX_DELAY)
            while self._index_queue and self._open:
                batch = list(dict.fromkeys(self._index_queue[:INDEX_BATCH]))
                started = self._reactor.seconds()
                try:
                    await self._index_ids(batch)
                except defer.CancelledError:
                    raise
                except Exception as e:  # noqa: BLE001 - kept at ix 0: searched by scan, retried
                    if not self._open:
                        return  # stopped: the next start-up sweeps what is left
                    _log.warn("indexing {n} messages failed ({e}); retrying", n=len(batch), e=e)
                    await deferLater(self._reactor, 1.0)
                    continue
                del self._index_queue[:len(batch)]
                took = self._reactor.seconds() - started
                if took > 0 and self._index_queue:
                    await deferLater(self._reactor, took * INDEX_REST)
        except defer.CancelledError:
            pass  # stopService: what is left stays ix 0, swept by the next process to start
        finally:
            self._indexer = None

    async def _index_ids(self, ids: list[str]) -> None:
        # By _id alone, ix checked here; nx-27017 answers ``$in`` on another field, or next to one, by scanning
        # (every ix 0 message, every posting): the indexer would slow down as the store grows.
        docs = [doc for doc in await self._call(self._db.messages.find, {"_id": {"$in": ids}},
                                                projection={"text": 1, "ts": 1, "room": 1, "seq": 1, "deleted": 1, "ix": 1})
                if doc.get("ix") == 0]
        if not docs:
            return
        # No delete first: a delete costs ~14 ms on nx-27017. A posting's _id is "room:seq:word", so a retry
        # or a crash only meets its own postings again (duplicate keys, ignored); an edit's old words that
        # outlive a crash only find a message that every search checks against its current words, once by id:
        # they cost space, never a wrong result.
        postings = [{"_id": f"{doc['_id']}:{w}", "w": w, "k": day_key(_day(doc["ts"]), w),
                     "rk": f"{doc['room']}:{w}", "t": millis(doc["ts"]), "r": doc["room"], "s": doc["seq"]}
                    for doc in docs if not doc.get("deleted") for w in words(doc.get("text"))]
        if postings:
            days = [_day(doc["ts"]) for doc in docs]  # where a walk through the days starts and stops
            first, last = min(days), max(days)
            known = self._known_days
            if known is None or first < known[0] or last > known[1]:  # else this process wrote a wider range
                await self._call(self._db.meta.update_one, {"_id": "postings"},
                                 {"$min": {"first_day": first}, "$max": {"last_day": last}}, upsert=True)
                self._known_days = (first, last) if known is None else (min(first, known[0]), max(last, known[1]))
            try:
                await self._call(self._db.postings.insert_many, postings, ordered=False)
            except BulkWriteError as e:
                if any(error.get("code") != 11000 for error in e.details.get("writeErrors", [])):
                    raise
        # Only if the text is still the one indexed: an edit meanwhile keeps ix 0 and is queued again.
        await self._call(self._db.messages.bulk_write, [
            UpdateOne({"_id": doc["_id"], "ix": 0, **({"text": doc["text"]} if "text" in doc else {})},
                      {"$set": {"ix": 1}}) for doc in docs], ordered=False)

    _sweeper: LoopingCall | None = None

    def _start_sweeping(self) -> None:
        """Sweep now (after the migration) and every SWEEP_EVERY seconds until stopService."""
        if self._sweeper is None or not self._sweeper.running:
            self._sweeper = LoopingCall(self._sweep_index)
            self._sweeper.clock = self._reactor
            self._sweeper.start(SWEEP_EVERY, now=True).addErrback(
                lambda f: _log.failure("the index sweep stopped", f))

    def _stop_sweeping(self) -> None:
        if self._sweeper is not None and self._sweeper.running:
            self._sweeper.stop()

    @defer.inlineCallbacks
    def _sweep_index(self):
        """Messages left at ix 0 (their writer crashed, or stored before postings) get their postings."""
        if self._index_queue or not self._open:
            return  # this process is still indexing: what it has queued is swept next time if still ix 0
        try:
            docs = yield defer.ensureDeferred(self._call(
                self._db.messages.find, {"ix": 0}, projection={"_id": 1, "ts": 1, "edited_at": 1},
                limit=SWEEP_LIMIT))
        except Exception as e:  # noqa: BLE001 - the store is down: the next sweep tries again
            _log.info("index sweep skipped ({e})", e=type(e).__name__)
            return
        old = datetime.fromtimestamp(self._reactor.seconds(), timezone.utc) - timedelta(seconds=SWEEP_AGE)
        ids = [doc["_id"] for doc in docs if max(_aware(doc.get("ts")), _aware(doc.get("edited_at"))) < old]
        if ids:
            _log.info("indexing {n} messages nobody indexed", n=len(ids))
            self._queue_index(ids)
            if len(docs) == SWEEP_LIMIT and self._indexer is not None:  # more left: sweep again once done
                self._indexer.addCallback(lambda _: self._sweep_index())

    async def _unindex(self, message_id: str, old_words: list[str]) -> None:
        if old_words:
            await self._call(self._db.postings.delete_many, {"_id": {"$in": [f"{message_id}:{w}" for w in old_words]}})

    # -- search ---------------------------------------------------------------

    async def _search(self, rooms: list[str], query: list[str], user_id: str | None, before: tuple | None,
                      limit: int, message_of) -> list:
        """Newest first by (ts, room, seq): the not-yet-indexed messages, then the postings of the rarest query
        word (fewest postings, counted up to LEAD_PROBE): room by room for a few rooms, else word by word when
        its prefix covers at most MAX_WORDS words, else one sorted range (day by day when common: COMMON
        postings, SPARSE_PROBE when other words narrow it: a day walk through a sparse intersection reads day
        after day); a candidate
        must have postings of the other query words that cover at most MAX_PROBED words (looked up by _id);
        each message is then fetched by id and checked here (every word, room, author, deleted)."""
        room_set = set(rooms)

        def wanted(doc) -> bool:
            if doc["room"] not in room_set or not _matches(doc, query, user_id):
                return False
            return before is None or _key(doc) < before

        # The unindexed: by equality on ``ix`` alone (nx-27017 scans the whole collection when the query
        # adds conditions), filtered here; few unless a writer is far behind. Found before the postings:
        # a message indexed meanwhile is then found by its postings too (kept once by id).
        found = {doc["_id"]: doc for doc in await self._call(self._db.messages.find, {"ix": 0}, limit=UNINDEXED)
                 if wanted(doc)}
        lead, others = (query[0], []) if len(query) == 1 else await self._rarest(query)
        probes = [covered for q in others if (covered := await self._words_of(q, MAX_PROBED)) is not None]
        walk = Walk(self, lambda doc: _matches(doc, query, user_id), limit, room_set, probes,
                    _posting_cursor(before), NARROW_PAGE if probes else PAGE)
        hits: dict = {}
        if len(rooms) <= FEW_ROOMS:  # each room's postings of the word: one index range each, never large
            for room in rooms:
                lo, hi = f"{room}:{lead}", f"{room}:{successor(lead)}"
                mine: dict = {}
                await walk.collect(lambda: {"rk": {"$gte": lo, "$lt": hi}}, walk.start, mine)
                hits.update(mine)
        elif (covered := await self._words_of(lead, MAX_WORDS)) is not None:
            await walk.merge([lambda w=w: {"w": {"$eq": w}} for w in covered], walk.start, hits)
        elif await self._count_postings(lead, bound := SPARSE_PROBE if others else COMMON) >= bound:
            await self._walk_days(lead, walk, hits)
        else:
            await walk.collect(lambda: {"w": {"$gte": lead, "$lt": successor(lead)}}, walk.start, hits)
        found.update(hits)
        docs = sorted(found.values(), key=_key, reverse=True)[:limit]
        return [message_of(doc) for doc in docs]

    async def _words_of(self, prefix: str, most: int) -> list[str] | None:
        """The words the postings hold that begin with ``prefix`` (each one an index seek), or None for more
        than ``most``."""
        found: list[str] = []
        low: dict = {"$gte": prefix}
        while len(found) <= most:
            page = await self._call(self._db.postings.find, {"w": {**low, "$lt": successor(prefix)}},
                                    projection={"_id": 0, "w": 1}, sort=qf.sort(qf.ASCENDING("w")), limit=1)
            if not page:
                return found
            found.append(page[0]["w"])
            low = {"$gt": found[-1]}
        return None

    async def _walk_days(self, lead, walk, hits) -> None:
        """A common word: its postings one day at a time, newest first, by the ``k`` range of that day (a
        sorted read of a whole common word's postings would sort them all: ~4 µs each on nx-27017)."""
        meta = await self._call(self._db.meta.find_one, {"_id": "postings"})
        if meta is None:
            return
        first = int(meta["first_day"])
        last = int(meta["last_day"])
        day = last if walk.start is None else min(walk.start[0] // DAY_MS, last)
        cursor = walk.start
        while day >= first and len(hits) < walk.limit:
            lo, hi = day_key(day, lead), day_key(day, successor(lead))
            await walk.collect(lambda: {"k": {"$gte": lo, "$lt": hi}}, cursor, hits)
            day, cursor = day - 1, None

    async def _rarest(self, query: list[str]) -> tuple[str, list[str]]:
        """Of two query words or more, the one with the fewest postings (counted up to LEAD_PROBE each; ties:
        the longest), and the others, rarest first."""
        counts = {q: await self._count_postings(q, LEAD_PROBE) for q in query}
        lead, *others = sorted(query, key=lambda q: (counts[q], -len(q)))
        return lead, others

    async def _count_postings(self, q: str, limit: int) -> int:
        answer = await self._call(self._db.command, "count", "postings",
                                  query={"w": {"$gte": q, "$lt": successor(q)}}, limit=limit)
        return int(answer.get("n", 0))


def _key(doc: dict) -> tuple:
    """A message document's place in the results: (ts, room, seq), newest first."""
    return _aware(doc["ts"]), doc["room"], doc["seq"]


def _posting_cursor(before: tuple | None) -> tuple | None:
    """The postings below which a ``before`` (ts, room, seq) cursor's results lie (a time between two
    milliseconds, never made by search, takes that whole millisecond; each message is checked anyway)."""
    if before is None:
        return None
    ts, room, seq = before
    t = millis(ts)
    return (t, room, seq) if _EPOCH + t * _MS == _aware(ts) else (t, AFTER_ROOMS, 0)


def _matches(doc: dict, query: list[str], user_id: str | None) -> bool:
    if doc.get("deleted") or (user_id is not None and doc.get("user_id") != user_id):
        return False
    have = doc.get("words") or []
    return all(any(w.startswith(q) for w in have) for q in query)
