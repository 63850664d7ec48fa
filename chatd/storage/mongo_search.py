"""Search over a postings collection (a mixin of :class:`chatd.storage.mongo.MongoStore`).

nx-27017, the embedded store, has no multikey index: a query on the ``words``
array scans every message (about 15 s over 200,000). So each message's words are
also kept as postings, one document ``{w, k, rk, t, m, r}`` per (word, message), indexed
``(w, t desc, m desc)``: a query word's prefix range is an index range on any
MongoDB. nx sorts a whole range to answer a sorted query, so a common word
is read in smaller ranges: ``k`` (day:word) one day at a time, or ``rk``
(room:word) room by room when few rooms are searched. Postings cost ~12
writes a message, too slow for the ack path, so they are written after it,
in small batches, by one indexer per process that rests twice as long as
each batch took (nx-27017 serves one request at a time: a message being sent
never waits long behind the index, which lags under a heavy load instead). A message is stored with ``ix: 0``
("not indexed yet") and gets ``ix: 1`` once its postings are in; search also
reads the few ``ix: 0`` messages (by equality on the ``ix`` index), so a
message is found from the moment it is acked. An edit deletes the message's
postings and sets ``ix: 0`` again. A process that dies leaves its queue at
``ix: 0``: every running process sweeps, at start and every ``SWEEP_EVERY``
seconds, the ``ix: 0`` messages older than ``SWEEP_AGE`` (by ``ts`` or
``edited_at``: younger ones are still in their writer's queue), read by
equality on the ``ix`` index. Schema version 4 marks older messages ``ix: 0``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pymongo import UpdateOne
from twisted.internet import defer
from twisted.internet.task import LoopingCall, deferLater
from twisted.logger import Logger
from txmongo import filter as qf

from chatd.storage.words import successor, words

INDEX_BATCH = 50  # messages whose postings are written per round trip: ~90 ms of nx-27017's time
# The indexer rests this many times as long as each batch took, so it takes at most a third of the store's time
# and the messages being sent (the store serves one request at a time on nx-27017) never wait long behind it.
INDEX_REST = 2.0
PAGE = 200  # postings read per page while searching
SPARSE_PROBE = 10000  # a lead narrowed by other words is common only from this many postings
FEW_ROOMS = 8  # a common word searched in this many rooms or fewer is read room by room (rk), not day by day
LEAD_PROBE = 2000  # postings counted per query word to pick the rarest (a count past it is "common")
SWEEP_EVERY = 60.0  # seconds between two sweeps of the messages nobody is indexing
SWEEP_LIMIT = 5000  # messages queued per sweep (another sweep follows when they are done)
UNINDEXED = 5000  # unindexed messages a search reads (more only after a migration or a long indexer outage)
SWEEP_AGE = 30.0  # an ix 0 message younger than this is left to its writer's queue
_log = Logger()


class SearchIndex:
    """Postings writes (after the ack) and the search that reads them."""

    _index_queue: list | None = None
    _indexer: defer.Deferred | None = None

    def _queue_index(self, ids: list[str]) -> None:
        """Index these messages soon, in this process's one indexer (never awaited by the writer)."""
        if self._index_queue is None:
            self._index_queue = []
        self._index_queue.extend(ids)
        if self._indexer is None:
            self._indexer = defer.ensureDeferred(self._index_loop())

    async def _index_loop(self) -> None:
        try:
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
                                                projection={"text": 1, "ts": 1, "room": 1, "deleted": 1, "ix": 1})
                if doc.get("ix") == 0]
        if not docs:
            return
        # No delete first: a delete costs ~14 ms on nx-27017. Postings left by a retry or a crash (the same
        # words again, or an edit's old words) only find a message that every search checks against its
        # current words, once by id: they cost space, never a wrong result.
        postings = [{"w": w, "k": day_key(_day(doc["ts"]), w), "rk": f"{doc['room']}:{w}", "t": doc["ts"],
                     "m": doc["_id"], "r": doc["room"]}
                    for doc in docs if not doc.get("deleted") for w in words(doc.get("text"))]
        if postings:
            days = [_day(p["t"]) for p in postings]  # where a walk through the days starts and stops
            await self._call(self._db.meta.update_one, {"_id": "postings"},
                             {"$min": {"first_day": min(days)}, "$max": {"last_day": max(days)}}, upsert=True)
            await self._call(self._db.postings.insert_many, postings, ordered=False)
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

    async def _unindex(self, message_id: str) -> None:
        await self._call(self._db.postings.delete_many, {"m": message_id})

    # -- search ---------------------------------------------------------------

    async def _search(self, rooms: list[str], query: list[str], user_id: str | None, before: tuple | None,
                      limit: int, message_of) -> list:
        """Newest first by (ts, id): the not-yet-indexed messages, then the postings of the rarest query word
        (fewest postings, counted up to LEAD_PROBE), fetched by id and checked here (other words, room,
        author, deleted)."""
        room_set = set(rooms)

        def wanted(doc) -> bool:
            if doc["room"] not in room_set or not _matches(doc, query, user_id):
                return False
            return before is None or (doc["ts"], doc["_id"]) < before

        # The unindexed: by equality on ``ix`` alone (nx-27017 scans the whole collection when the query
        # adds conditions), filtered here; few unless a writer is far behind. Found before the postings:
        # a message indexed meanwhile is then found by its postings too (kept once by id).
        found = {doc["_id"]: doc for doc in await self._call(self._db.messages.find, {"ix": 0}, limit=UNINDEXED)
                 if wanted(doc)}
        lead, common = (query[0], False) if len(query) == 1 and len(rooms) <= FEW_ROOMS else await self._rarest(query)
        hits: dict = {}
        if len(rooms) <= FEW_ROOMS:  # each room's postings of the word: one index range each, never large
            for room in rooms:
                lo, hi = f"{room}:{lead}", f"{room}:{successor(lead)}"
                mine: dict = {}
                await self._collect(lambda: {"rk": {"$gte": lo, "$lt": hi}}, query, user_id, before, limit,
                                    {room}, mine)
                hits.update(mine)
        elif common:
            await self._walk_days(lead, query, user_id, before, limit, room_set, hits)
        else:
            await self._collect(lambda: {"w": {"$gte": lead, "$lt": successor(lead)}}, query, user_id, before,
                                limit, room_set, hits)
        found.update(hits)
        docs = sorted(found.values(), key=lambda d: (d["ts"], d["_id"]), reverse=True)[:limit]
        return [message_of(doc) for doc in docs]

    async def _collect(self, spec_of, query, user_id, cursor, limit, room_set, hits) -> bool:
        """Read postings matching ``spec_of()`` newest first, PAGE at a time from ``cursor``, into ``hits``
        (messages checked here) until ``limit`` hits; whether the postings ran out first."""
        while len(hits) < limit:
            spec: dict = spec_of()
            if cursor is not None:  # a range, and ties dropped here: nx-27017 scans everything for an $or
                spec["t"] = {"$lte": cursor[0]}
            page = await self._call(self._db.postings.find, spec, projection={"t": 1, "m": 1, "r": 1},
                                    sort=qf.sort(qf.DESCENDING("t") + qf.DESCENDING("m")), limit=PAGE)
            read = len(page)
            if page:
                if cursor is not None and (page[-1]["t"], page[-1]["m"]) >= cursor:
                    return False  # more than PAGE postings at the cursor's very time: cannot happen
                last = (page[-1]["t"], page[-1]["m"])
                page = [p for p in page if cursor is None or (p["t"], p["m"]) < cursor]
                cursor = last
                ids = list(dict.fromkeys(p["m"] for p in page if p["r"] in room_set and p["m"] not in hits))
                if ids:
                    for doc in await self._call(self._db.messages.find, {"_id": {"$in": ids}}):
                        if _matches(doc, query, user_id):
                            hits[doc["_id"]] = doc
            if read < PAGE:
                return True
        return False

    async def _walk_days(self, lead, query, user_id, before, limit, room_set, hits) -> None:
        """A common word: its postings one day at a time, newest first, by the ``k`` range of that day (a
        sorted read of a whole common word's postings would sort them all: ~4 µs each on nx-27017)."""
        meta = await self._call(self._db.meta.find_one, {"_id": "postings"})
        if meta is None:
            return
        first = int(meta["first_day"])
        day = int(meta["last_day"]) if before is None else min(_day(before[0]), int(meta["last_day"]))
        cursor = before
        while day >= first and len(hits) < limit:
            lo, hi = day_key(day, lead), day_key(day, successor(lead))
            await self._collect(lambda: {"k": {"$gte": lo, "$lt": hi}}, query, user_id, cursor, limit,
                                room_set, hits)
            day, cursor = day - 1, None

    async def _rarest(self, query: list[str]) -> tuple[str, bool]:
        """The query word with the fewest postings (counted up to LEAD_PROBE each; ties: the longest), and
        whether it is common: LEAD_PROBE postings or more, SPARSE_PROBE when other words narrow it (a day
        walk through a sparse intersection reads day after day)."""
        counts = {q: await self._count_postings(q, LEAD_PROBE) for q in query}
        lead = min(query, key=lambda q: (counts[q], -len(q)))
        if counts[lead] < LEAD_PROBE or len(query) == 1:
            return lead, counts[lead] >= LEAD_PROBE
        return lead, await self._count_postings(lead, SPARSE_PROBE) >= SPARSE_PROBE

    async def _count_postings(self, q: str, limit: int) -> int:
        answer = await self._call(self._db.command, "count", "postings",
                                  query={"w": {"$gte": q, "$lt": successor(q)}}, limit=limit)
        return int(answer.get("n", 0))


def day_key(day: int, word: str) -> str:
    """A posting's ``k``: its day, then its word, so a day's postings of a prefix are one index range."""
    return f"{day:06d}:{word}"


def _day(when: datetime) -> int:
    return int(_aware(when).timestamp() // 86400)


def _aware(when: datetime | None) -> datetime:
    if when is None:
        return datetime.min.replace(tzinfo=timezone.utc)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _matches(doc: dict, query: list[str], user_id: str | None) -> bool:
    if doc.get("deleted") or (user_id is not None and doc.get("user_id") != user_id):
        return False
    have = doc.get("words") or []
    return all(any(w.startswith(q) for w in have) for q in query)
