"""File queries of :class:`chatd.storage.mongo.MongoStore` (a mixin: ``_call``, ``_db``).

The bytes live in GridFS (``files.files`` / ``files.chunks``), written and read
through txmongo's GridIn and GridOut a chunk at a time. What chatd knows of a
file (name, size, type, room, uploader) is kept in a collection of its own,
``uploads``, written once the bytes are complete: a file is visible only when
whole, and nothing depends on the optional fields of the GridFS files document
(which some servers do not keep).
"""

from __future__ import annotations

from datetime import datetime

from bson import ObjectId
from pymongo.errors import OperationFailure
from txmongo.gridfs import GridIn, GridOut

from chatd.storage.mongo_users import object_id, utc
from chatd.storage.records import FileRecord
from chatd.storage.util import returns_deferred

CHUNK_SIZE = 255 * 1024  # GridFS's customary chunk size


def _file(doc: dict | None) -> FileRecord | None:
    if doc is None:
        return None
    return FileRecord(
        id=str(doc["_id"]), name=doc["name"], size=int(doc["size"]), content_type=doc["content_type"],
        room=doc["room"], user_id=doc["user_id"], uploaded_at=utc(doc["uploaded_at"]),
    )


class _Writer:
    """One file being written: ``write``, then ``close`` (the FileRecord) or ``abort``."""

    def __init__(self, store, record: dict) -> None:
        self._store = store
        self._record = record
        self._grid = GridIn(store._db.files, _id=record["_id"], filename=record["name"], chunkSize=CHUNK_SIZE)
        self.size = 0

    @returns_deferred
    async def write(self, data: bytes) -> None:
        await self._store._call(self._grid.write, data)
        self.size += len(data)

    @returns_deferred
    async def close(self) -> FileRecord:
        await self._store._call(self._grid.close)
        record = dict(self._record, size=self.size)
        await self._store._call(self._store._db.uploads.insert_one, record)
        return _file(record)

    @returns_deferred
    async def abort(self) -> None:
        await self._store._delete_bytes(self._record["_id"])


class _Reader:
    def __init__(self, store, grid: GridOut) -> None:
        self._store = store
        self._grid = grid

    @returns_deferred
    async def read(self, size: int) -> bytes:
        return await self._store._call(self._grid.read, size) or b""


class FileQueries:
    """Files: bytes in GridFS, descriptions in ``uploads``."""

    def new_file(self, name: str, content_type: str, room: str, user_id: str, uploaded_at: datetime) -> _Writer:
        record = {"_id": ObjectId(), "name": name, "content_type": content_type, "room": room,
                  "user_id": user_id, "uploaded_at": uploaded_at, "size": 0}
        return _Writer(self, record)

    @returns_deferred
    async def file_info(self, file_id: str) -> FileRecord | None:
        oid = object_id(file_id)
        if oid is None:
            return None
        return _file(await self._call(self._db.uploads.find_one, {"_id": oid}))

    @returns_deferred
    async def read_file(self, file_id: str) -> _Reader:
        record = await self.file_info(file_id)
        if record is None:
            raise KeyError(file_id)
        # The GridFS files document is not read: its size and chunk size are known here.
        doc = {"_id": ObjectId(record.id), "length": record.size, "chunkSize": CHUNK_SIZE}
        return _Reader(self, GridOut(self._db.files, doc))

    @returns_deferred
    async def delete_file(self, file_id: str) -> bool:
        oid = object_id(file_id)
        if oid is None:
            return False
        result = await self._call(self._db.uploads.delete_one, {"_id": oid})
        await self._delete_bytes(oid)
        return result.deleted_count == 1

    async def _delete_bytes(self, oid: ObjectId) -> None:
        for collection, query in ((self._db.files.files, {"_id": oid}), (self._db.files.chunks, {"files_id": oid})):
            try:
                await self._call(collection.delete_many, query)
            except OperationFailure as e:
                # Some servers treat GridFS collections as one file store: deleting either
                # part deletes both, and the second delete reports the file "not found".
                if "not found" not in str(e):
                    raise
