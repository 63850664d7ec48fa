"""Writing a backup of a live store (``chatd-admin backup``), consistent per room while it is written to.

Collections are found by listing the database, so a collection a later chatd
adds is backed up without a change here; GridFS's own collections are not
copied as documents: each ``uploads`` record is followed by its file's bytes,
read through chatd's own file reader (a file is in the backup whole or not).

Messages are not copied by scanning their collection: a scan racing chatd's
batched inserts can see seq 8 and miss seq 7 (a document inserted behind the
cursor). Each room is read instead by ``_id`` (``room:seq``) up to a head seen
stored — the room's recorded head, probed past since chatd writes heads lazily
— and a seq missing below that head is read again a few times and otherwise
ends the room there. The room's record in the backup is given that head, so a
restored chatd continues at head + 1. Memberships are copied before rooms, so
no read position is past its room's head in the backup.
"""

from __future__ import annotations

from datetime import datetime, timezone

from twisted.internet.task import deferLater

import chatd
from chatd.backup.format import Writer
from chatd.storage.records import message_id
from chatd.storage.schema import META_ID, SCHEMA_VERSION

GRIDFS = frozenset({"files.files", "files.chunks", "files_files", "files_chunks"})  # nx names them with "_"
SPECIAL = frozenset({"rooms", "messages", "uploads"})  # written by their own steps, after the others
BATCH = 1000  # documents per cursor batch and per record
SEQ_BATCH = 500  # message ids asked per round trip
PROBE = 100  # seqs probed past a room's recorded head per round trip
HOLE_RETRIES = 20  # re-reads of a missing seq below the head, 0.05 s apart, before the room ends there
FILE_CHUNK = 255 * 1024


def chatd_version() -> str:
    try:
        from importlib.metadata import version
        return version("chatd")
    except Exception:
        return getattr(chatd, "__version__", "unknown")


async def collection_names(db, call) -> list[str]:
    """chatd's collections in the database, in backup order (GridFS and system collections left out)."""
    names = [n for n in await call(db.collection_names) if not n.startswith("system.") and n not in GRIDFS]
    return sorted(n for n in names if n not in SPECIAL)


class Dumper:
    """Writes ``store`` (a started MongoStore) to ``writer``; ``progress`` counts bytes and items."""

    def __init__(self, reactor, store, writer: Writer, progress) -> None:
        self._reactor = reactor
        self._store = store
        self._db = store._db
        self._call = store._call
        self._writer = writer
        self._progress = progress
        self.left_out: dict[str, int] = {}  # room -> seqs past the head a hole ended it at

    def _wrote(self, items: int) -> None:
        self._progress.add(self._writer.bytes_written - self._progress.bytes, items)

    async def dump(self) -> dict:
        meta = await self._call(self._db.meta.find_one, {"_id": META_ID}) or {}
        self._writer.header({"chatd": chatd_version(), "schema": int(meta.get("version", SCHEMA_VERSION)),
                             "created_at": datetime.now(timezone.utc).isoformat()})
        for name in await collection_names(self._db, self._call):
            await self._collection(name)
        await self._rooms()
        await self._files()
        summary = self._writer.trailer()
        self._wrote(0)
        return summary

    async def _collection(self, name: str) -> None:
        self._writer.collection(name)
        cursor = self._db[name].find({}, batch_size=BATCH, timeout=self._store.timeout * 6)
        async for batch in cursor.batches():
            self._writer.docs(batch)
            self._wrote(len(batch))

    async def _rooms(self) -> None:
        # Only the names are held (a few bytes a room), not the rooms: each is read again when its turn comes.
        names = [doc["_id"] for doc in await self._call(self._db.rooms.find, {}, projection={"_id": 1})]
        self._writer.collection("messages")
        heads = {}
        for name in names:
            heads[name] = await self._messages(name)
        self._writer.collection("rooms")
        for start in range(0, len(names), BATCH):
            chunk = names[start:start + BATCH]
            docs = await self._call(self._db.rooms.find, {"_id": {"$in": chunk}})
            for doc in docs:
                seq, at = heads[doc["_id"]]
                doc["last_seq"] = seq
                if at is not None:
                    doc["last_message_at"] = at
            self._writer.docs(docs)
            self._wrote(len(docs))

    async def _messages(self, room: str):
        """Write the room's messages 1..head; the head and its message's time."""
        doc = await self._call(self._db.rooms.find_one, {"_id": room}) or {}
        head = await self._probe(room, int(doc.get("last_seq", 0)))
        at = None
        for start in range(1, head + 1, SEQ_BATCH):
            seqs = list(range(start, min(head, start + SEQ_BATCH - 1) + 1))
            found = await self._read(room, seqs)
            if len(found) < len(seqs):  # a hole that did not fill: the room ends before it
                hole = seqs[len(found)]
                self.left_out[room] = head - hole + 1
                head = hole - 1
            if found:
                self._writer.docs(found)
                self._wrote(len(found))
                at = found[-1].get("ts")
            if head < seqs[-1]:
                break
        return head, at

    async def _probe(self, room: str, head: int) -> int:
        """The highest seq stored contiguously from ``head`` (heads are written lazily: they may lag)."""
        while True:
            ids = [message_id(room, seq) for seq in range(head + 1, head + PROBE + 1)]
            docs = await self._call(self._db.messages.find, {"_id": {"$in": ids}}, projection={"seq": 1})
            seqs = {int(d["seq"]) for d in docs}
            probed = head
            while probed + 1 in seqs:
                probed += 1
            if probed < head + PROBE:
                return probed
            head = probed

    async def _read(self, room: str, seqs: list[int]) -> list[dict]:
        """The messages of these seqs in order, re-reading a missing one a few times (it may be in flight);
        stops at the first one still missing."""
        wanted = set(seqs)
        have: dict[int, dict] = {}
        for attempt in range(HOLE_RETRIES + 1):
            ids = [message_id(room, seq) for seq in sorted(wanted - set(have))]
            for d in await self._call(self._db.messages.find, {"_id": {"$in": ids}}):
                have[int(d["seq"])] = d
            if len(have) == len(wanted):
                break
            await deferLater(self._reactor, 0.05)
        result = []
        for seq in seqs:
            if seq not in have:
                break
            result.append(have[seq])
        return result

    async def _files(self) -> None:
        self._writer.collection("uploads")  # their documents travel in FILE records
        cursor = self._db.uploads.find({}, batch_size=100, timeout=self._store.timeout * 6)
        async for batch in cursor.batches():
            for upload in batch:
                await self._file(upload)

    async def _file(self, upload: dict) -> None:
        try:
            reader = await self._store.read_file(str(upload["_id"]))
        except KeyError:
            return  # deleted since the cursor saw it
        self._writer.file(upload)
        remaining = int(upload.get("size", 0))
        try:
            while remaining > 0:
                data = await reader.read(min(FILE_CHUNK, remaining))
                if not data:
                    raise EOFError
                self._writer.chunk(data)
                remaining -= len(data)
                self._wrote(0)
        except (EOFError, KeyError):
            self._writer.file_end(lost=True)  # deleted while being read: left out
            return
        self._writer.file_end()
        self._wrote(1)


def describe(summary: dict) -> str:
    counts = ", ".join(f"{n} {name}" for name, n in sorted(summary["counts"].items()))
    return f"{counts}; {summary['files']} files ({summary['file_bytes']} bytes)"

