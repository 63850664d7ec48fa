"""Restoring a backup onto a store no chatd serves (``chatd-admin restore``).

The whole file is read and checked first (every record's checksum, every
file's SHA-256, the trailer's counts, the format version): a truncated or
corrupted backup is refused before anything is written. Then the target's
chatd collections are dropped (only with ``--force`` when they hold data) and
the backup is written in batches, files through chatd's own file writer with
their ids. The indexes and migrations run last, as at a chatd's start: a backup
of an older schema comes back migrated.
"""

from __future__ import annotations

import json
import os

from chatd.backup.dump import GRIDFS
from chatd.backup.progress import Counted, Progress
from chatd.backup.format import BYTES, COLLECTION, DOCS, FILE, FILE_END, HEADER, decode_docs, records, verify
from chatd.storage.mongo_files import _Writer
from chatd.storage.schema import SCHEMA_VERSION

import bson
from twisted.internet import defer

# Written by every chatd store at its start (the schema version, the admin seat counter): they alone
# do not make a store "non-empty".
STARTUP_ONLY = frozenset({"meta", "counters"})
IN_FLIGHT = 4  # document batches being written at once


class RestoreRefused(Exception):
    """A restore that would lose data or cannot be done: the reason, for the operator."""


def check(path: str) -> tuple[dict, dict]:
    """Verify the backup at ``path``: its header and trailer; BackupFormatError or RestoreRefused."""
    progress = Progress("check", total_bytes=os.path.getsize(path))
    with open(path, "rb") as stream:
        header, trailer = verify(Counted(stream, progress))
    progress.done()
    if int(header.get("schema", 0)) > SCHEMA_VERSION:
        raise RestoreRefused(f"the backup is of schema {header['schema']}, newer than this chatd's "
                             f"({SCHEMA_VERSION}): restore it with a newer chatd")
    return header, trailer


async def occupied(store) -> list[str]:
    """The target's collections that hold chatd data."""
    names = [n for n in await store._call(store._db.collection_names) if not n.startswith("system.")]
    held = []
    for name in sorted(set(names) - GRIDFS - STARTUP_ONLY):
        if await store._call(store._db[name].find_one, {}) is not None:
            held.append(name)
    return held


async def clear(store) -> None:
    """Drop the target's chatd collections, and the bytes of its files."""
    db, call = store._db, store._call
    names = [n for n in await call(db.collection_names) if not n.startswith("system.")]
    if "uploads" in names:
        async for batch in db.uploads.find({}, projection={"_id": 1}, batch_size=500).batches():
            for upload in batch:
                await store._delete_bytes(upload["_id"])
    for name in names:
        if name not in GRIDFS:
            await call(db.drop_collection, name)


class Loader:
    """Writes a verified backup into ``store`` (a started, ready MongoStore)."""

    def __init__(self, store, progress) -> None:
        self._store = store
        self._progress = progress
        self.counts: dict[str, int] = {}
        self.files = 0

    async def load(self, path: str) -> None:
        store = self._store
        current, writer = None, None
        in_flight: list[defer.Deferred] = []  # batches written while the next is decoded
        with open(path, "rb") as stream:
            for kind, payload in records(stream):
                size = len(payload) + 9
                if kind == COLLECTION:
                    current = bson.decode(payload)["name"]
                elif kind == DOCS:
                    docs = decode_docs(payload)
                    if len(in_flight) >= IN_FLIGHT:
                        await in_flight.pop(0)
                    in_flight.append(defer.ensureDeferred(
                        store._call(store._db[current].insert_many, docs, ordered=False)))
                    self.counts[current] = self.counts.get(current, 0) + len(docs)
                    self._progress.add(size, len(docs))
                    continue
                elif kind == FILE:
                    while in_flight:
                        await in_flight.pop(0)
                    writer = _Writer(store, bson.decode(payload))
                elif kind == BYTES:
                    await writer.write(payload)
                elif kind == FILE_END:
                    if bson.decode(payload).get("lost"):
                        await writer.abort()
                    else:
                        await writer.close()
                        self.files += 1
                        self._progress.add(0, 1)
                elif kind == HEADER:
                    json.loads(payload)
                self._progress.add(size)
        while in_flight:
            await in_flight.pop(0)
        await store._create_indexes()  # dropped with their collections; also migrates an older schema


def size_of(path: str) -> int:
    return os.path.getsize(path)
