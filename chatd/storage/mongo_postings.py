"""Reading postings newest first for one search (chatd.storage.mongo_search).

A posting's place is its key (t, r, s): the message's time in milliseconds, its
room, its seq, compared as a tuple, newest first (the results' order). nx-27017
answers a sorted query with SQL ORDER BY on the indexed expressions: for
``{w: {$eq: word}}`` (explicit ``$eq``: a bare value would become an array
containment test) the ``(w, t, r, s)`` index is already in that order, so a page
costs what it returns (a 200-posting page of "the": ~2 ms); any range (a prefix,
``k``, ``rk``) is sorted whole first (~4 µs a posting: ~0.9 s for "the"). So a
query word whose prefix covers few words is read as one stream per word, merged
here; the ranges are for short prefixes that cover many words.
"""

from __future__ import annotations

import heapq

from txmongo import filter as qf

PROJECTION = {"_id": 0, "t": 1, "r": 1, "s": 1}
PROBE_BATCH = 2000  # posting ids looked up per query
FIRST_PAGE = 50  # postings in a stream's first page (then twice as many each time, up to the walk's size)
AFTER_ROOMS = "\x7f"  # above every room name (letters, digits, "_.-"): a cursor taking a whole millisecond
_ORDER = qf.sort(qf.DESCENDING("t") + qf.DESCENDING("r") + qf.DESCENDING("s"))


def _keys(page) -> list[tuple]:
    return [(p["t"], p["r"], p["s"]) for p in page]


class Postings:
    """The postings matching ``spec_of()`` below ``cursor``, newest first, in pages growing from FIRST_PAGE
    to ``size`` (a search of many words, or a dense one, needs few of each)."""

    def __init__(self, store, spec_of, cursor, size: int) -> None:
        self.store, self.spec_of, self.cursor, self.size = store, spec_of, cursor, size
        self.ask = min(FIRST_PAGE, size)
        self.done = False

    async def next(self) -> list[tuple]:
        """The next keys, newest first; [] once there are no more."""
        call, postings = self.store._call, self.store._db.postings
        while not self.done:
            cursor, spec = self.cursor, self.spec_of()
            if cursor is not None:  # a range, and ties dropped here: nx-27017 scans everything for an $or
                spec["t"] = {"$lte": cursor[0]}
            ask, self.ask = self.ask, min(2 * self.ask, self.size)
            keys = _keys(await call(postings.find, spec, projection=PROJECTION, sort=_ORDER, limit=ask))
            self.done = len(keys) < ask
            fresh = [k for k in keys if cursor is None or k < cursor]
            if not fresh and not self.done:
                # A whole page in the cursor's very millisecond (a burst): all of that millisecond at once.
                spec = {**self.spec_of(), "t": {"$gte": cursor[0], "$lte": cursor[0]}}
                same = _keys(await call(postings.find, spec, projection=PROJECTION))
                self.cursor = (cursor[0] - 1, AFTER_ROOMS, 0)
                fresh = sorted((k for k in same if k < cursor), reverse=True)
            elif keys:
                self.cursor = keys[-1]
            if fresh:
                return fresh
        return []


class Walk:
    """One search's reading of postings: pages of keys newest first, each page's messages fetched and kept
    in ``hits`` when ``matches`` them, until ``limit`` hits (or the postings run out). ``probes``: for other
    query words, the words each covers; a candidate is fetched only if it has a posting of one of each
    (looked up by ``_id`` "room:seq:word", an ``$in`` nx answers from the ``_id`` column: a miss costs ~nothing,
    while each returned document, posting or message, costs tens of µs)."""

    def __init__(self, store, matches, limit: int, room_set: set, probes: list, start, size: int) -> None:
        self.store, self.matches, self.limit, self.room_set = store, matches, limit, room_set
        self.probes, self.start, self.size = probes, start, size

    async def collect(self, spec_of, cursor, hits: dict) -> None:
        """One range (or word) of postings from ``cursor`` on."""
        postings = Postings(self.store, spec_of, cursor, self.size)
        while len(hits) < self.limit:
            keys = await postings.next()
            if not keys:
                return
            await self._check(keys, hits)

    async def merge(self, specs: list, cursor, hits: dict) -> None:
        """Several words' postings (each an index-ordered stream) merged newest first."""
        streams = [Postings(self.store, spec_of, cursor, self.size) for spec_of in specs]
        buffers: list[list[tuple]] = [[] for _ in streams]
        while len(hits) < self.limit:
            for i, stream in enumerate(streams):
                if not buffers[i] and not stream.done:
                    buffers[i] = (await stream.next())[::-1]  # oldest first: pop() takes the newest
            if not any(buffers):
                return
            # Newest first across the streams, until a stream that may have more runs dry (refilled first).
            batch: list[tuple] = []
            heap = [(_desc(b[-1]), i) for i, b in enumerate(buffers) if b]
            heapq.heapify(heap)
            while heap and len(batch) < self.size:
                _, i = heapq.heappop(heap)
                batch.append(buffers[i].pop())
                if buffers[i]:
                    heapq.heappush(heap, (_desc(buffers[i][-1]), i))
                elif not streams[i].done:
                    break
            await self._check(batch, hits)

    async def _check(self, keys, hits: dict) -> None:
        ids = [i for i in dict.fromkeys(f"{r}:{s}" for _, r, s in keys if r in self.room_set) if i not in hits]
        for covered in self.probes:
            if not ids:
                return
            wanted = {f"{i}:{w}": i for i in ids for w in covered}
            found: set = set()
            probe = list(wanted)
            for at in range(0, len(probe), PROBE_BATCH):
                found.update(wanted[p["_id"]] for p in await self.store._call(
                    self.store._db.postings.find, {"_id": {"$in": probe[at:at + PROBE_BATCH]}},
                    projection={"_id": 1}))
            ids = [i for i in ids if i in found]
        if ids:
            for doc in await self.store._call(self.store._db.messages.find, {"_id": {"$in": ids}}):
                if self.matches(doc):
                    hits[doc["_id"]] = doc


def _desc(key: tuple) -> tuple:
    """A key that heapq's min-heap pops newest first."""
    t, r, s = key
    return -t, (*(-1 - ord(c) for c in r), 0), -s  # 0 ends a room: "ab" after "abc"
