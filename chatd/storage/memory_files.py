"""The files part of the in-memory store (a mixin of ``chatd.storage.memory.MemoryStore``)."""

from __future__ import annotations

from dataclasses import replace

from bson import ObjectId
from twisted.internet import defer

from chatd.storage.records import FileRecord, StoreUnavailable


def answer(method):
    """Run ``method`` now and wrap its result (or StoreUnavailable when down) in a Deferred."""

    def wrapper(self, *args, **kwargs):
        if self.down:
            return defer.fail(StoreUnavailable("memory store is down"))
        return defer.maybeDeferred(method, self, *args, **kwargs)

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


class MemoryFiles:
    """Files kept whole in ``self._files``: id → (FileRecord, bytes)."""

    def new_file(self, name, content_type, room, user_id, uploaded_at):
        return _MemoryFileWriter(self, FileRecord(str(ObjectId()), name, 0, content_type, room, user_id, uploaded_at))

    @answer
    def file_info(self, file_id):
        found = self._files.get(file_id)
        return found[0] if found else None

    @answer
    def read_file(self, file_id):
        if file_id not in self._files:
            raise KeyError(file_id)
        return _MemoryFileReader(self._files[file_id][1])

    @answer
    def delete_file(self, file_id):
        return self._files.pop(file_id, None) is not None


class _MemoryFileWriter:
    def __init__(self, store: MemoryFiles, record: FileRecord) -> None:
        self._store = store
        self._record = record
        self._parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes):
        if self._store.down:
            return defer.fail(StoreUnavailable("memory store is down"))
        self._parts.append(data)
        self.size += len(data)
        return defer.succeed(None)

    def close(self):
        if self._store.down:
            return defer.fail(StoreUnavailable("memory store is down"))
        record = replace(self._record, size=self.size)
        self._store._files[record.id] = (record, b"".join(self._parts))
        return defer.succeed(record)

    def abort(self):
        self._parts = []
        return defer.succeed(None)


class _MemoryFileReader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._position = 0

    def read(self, size):
        chunk = self._data[self._position:self._position + size]
        self._position += len(chunk)
        return defer.succeed(chunk)
