"""The backup file: a magic line, then checksummed records, then a trailer (docs/BEHAVIOUR.md, Backup).

Each record is ``kind`` (1 byte), ``length`` (4 bytes, big-endian), the payload,
and a CRC-32 of those three: a flipped byte anywhere fails that record. The
trailer (the last record) holds the counts and a SHA-256 of everything before
it, so a file cut short, even between records, is refused. Documents are BSON
(ObjectIds, datetimes and bytes come back exactly); a ``DOCS`` record holds a
batch of them, so memory is bounded by a batch, never a collection.

Kinds: ``HEADER`` (JSON: format, chatd and schema versions, time), ``COLLECTION``
(BSON ``{name}``: the documents that follow belong to it), ``DOCS``, ``FILE``
(BSON: an ``uploads`` document; the file's bytes follow), ``BYTES``, ``FILE_END``
(BSON ``{size, sha256}``, or ``{lost: true}`` for a file deleted during the
backup), ``TRAILER`` (JSON).
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from typing import BinaryIO, Iterator

import bson
from bson.codec_options import CodecOptions

FORMAT_VERSION = 1
MAGIC = b"CHATD-BACKUP\n"
HEADER, COLLECTION, DOCS, FILE, BYTES, FILE_END, TRAILER = b"HCDFBET"
MAX_RECORD = 64 * 1024 * 1024  # a length above this is corruption, not a record to allocate
_PREFIX = struct.Struct(">BI")
_CRC = struct.Struct(">I")
CODEC = CodecOptions(tz_aware=True)


class BackupFormatError(Exception):
    """The file is not a complete, intact chatd backup of a format this chatd reads."""


class Writer:
    """Writes records to a binary stream, keeping the counts and the running SHA-256 for the trailer."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._sha = hashlib.sha256(MAGIC)
        self.bytes_written = len(MAGIC)
        self.counts: dict[str, int] = {}
        self.files = 0
        self.file_bytes = 0
        self.records = 0
        self._current: str | None = None
        out.write(MAGIC)

    def _record(self, kind: int, payload: bytes) -> None:
        if len(payload) > MAX_RECORD:
            raise ValueError(f"record of {len(payload)} bytes is over the limit")
        head = _PREFIX.pack(kind, len(payload))
        crc = zlib.crc32(payload, zlib.crc32(head))
        for part in (head, payload, _CRC.pack(crc)):
            self._out.write(part)
            self._sha.update(part)
            self.bytes_written += len(part)
        self.records += 1

    def header(self, fields: dict) -> None:
        self._record(HEADER, json.dumps({"format": FORMAT_VERSION, **fields}).encode())

    def collection(self, name: str) -> None:
        self._current = name
        self.counts.setdefault(name, 0)
        self._record(COLLECTION, bson.encode({"name": name}))

    def docs(self, docs: list[dict]) -> None:
        """One batch of the current collection's documents (split so a record stays under MAX_RECORD)."""
        payload = bytearray()
        for doc in docs:
            encoded = bson.encode(doc, codec_options=CODEC)
            if payload and len(payload) + len(encoded) > MAX_RECORD // 4:
                self._record(DOCS, bytes(payload))
                payload = bytearray()
            payload += encoded
        if payload:
            self._record(DOCS, bytes(payload))
        self.counts[self._current] += len(docs)

    def file(self, upload: dict) -> None:
        self._record(FILE, bson.encode(upload, codec_options=CODEC))
        self._file_sha = hashlib.sha256()
        self._file_size = 0

    def chunk(self, data: bytes) -> None:
        self._record(BYTES, data)
        self._file_sha.update(data)
        self._file_size += len(data)
        self.file_bytes += len(data)

    def file_end(self, lost: bool = False) -> None:
        end = {"lost": True} if lost else {"size": self._file_size, "sha256": self._file_sha.hexdigest()}
        self._record(FILE_END, bson.encode(end))
        self.files += 0 if lost else 1

    def trailer(self) -> dict:
        summary = {"counts": self.counts, "files": self.files, "file_bytes": self.file_bytes,
                   "records": self.records + 1, "sha256": self._sha.hexdigest()}
        self._record(TRAILER, json.dumps(summary).encode())
        return summary


def records(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """The records of a backup, each checked; raises BackupFormatError at the first fault.

    The header must come first and be of FORMAT_VERSION; the trailer must come
    last and match what preceded it. Callers act on records as they come, so a
    caller that must change nothing on a bad file reads it through once first
    (:func:`verify`).
    """
    if stream.read(len(MAGIC)) != MAGIC:
        raise BackupFormatError("not a chatd backup (no chatd backup header)")
    sha = hashlib.sha256(MAGIC)
    count, counts, current, files, file_bytes = 0, {}, None, 0, 0
    file_sha, file_size = None, 0
    while True:
        head = stream.read(_PREFIX.size)
        if len(head) < _PREFIX.size:
            raise BackupFormatError("the backup is truncated (no trailer)")
        kind, length = _PREFIX.unpack(head)
        if length > MAX_RECORD:
            raise BackupFormatError(f"the backup is corrupted (record {count + 1} claims {length} bytes)")
        payload = stream.read(length)
        tail = stream.read(_CRC.size)
        if len(payload) < length or len(tail) < _CRC.size:
            raise BackupFormatError("the backup is truncated (inside a record)")
        if zlib.crc32(payload, zlib.crc32(head)) != _CRC.unpack(tail)[0]:
            raise BackupFormatError(f"the backup is corrupted (checksum of record {count + 1} does not match)")
        count += 1
        if count == 1:
            _check_header(kind, payload)
        if kind == TRAILER:
            _check_trailer(payload, sha.hexdigest(), count, counts, files, file_bytes)
            if stream.read(1):
                raise BackupFormatError("the backup has data after its trailer")
            yield kind, payload
            return
        sha.update(head), sha.update(payload), sha.update(tail)
        if kind == COLLECTION:
            current = bson.decode(payload)["name"]
            counts.setdefault(current, 0)
        elif kind == DOCS:
            counts[current] = counts.get(current, 0) + _count_docs(payload)
        elif kind == FILE:
            file_sha, file_size = hashlib.sha256(), 0
        elif kind == BYTES:
            file_sha.update(payload)
            file_size += length
            file_bytes += length
        elif kind == FILE_END:
            end = bson.decode(payload)
            if not end.get("lost"):
                if end.get("size") != file_size or end.get("sha256") != file_sha.hexdigest():
                    raise BackupFormatError(f"the backup is corrupted (file {files + 1}'s bytes do not match)")
                files += 1
        elif kind != HEADER:
            raise BackupFormatError(f"the backup is corrupted (unknown record kind {kind})")
        yield kind, payload


def _count_docs(payload: bytes) -> int:
    """How many BSON documents a DOCS payload holds, from their length prefixes (no decoding)."""
    count = offset = 0
    while offset < len(payload):
        size = int.from_bytes(payload[offset:offset + 4], "little")
        if size < 5 or offset + size > len(payload):
            raise BackupFormatError("the backup is corrupted (a document's length is wrong)")
        offset += size
        count += 1
    return count


def _check_header(kind: int, payload: bytes) -> None:
    if kind != HEADER:
        raise BackupFormatError("the backup is corrupted (it does not start with its header)")
    version = json.loads(payload).get("format")
    if version != FORMAT_VERSION:
        raise BackupFormatError(f"backup format {version} is not one this chatd reads (format {FORMAT_VERSION})")


def _check_trailer(payload: bytes, sha: str, count: int, counts: dict, files: int, file_bytes: int) -> None:
    trailer = json.loads(payload)
    seen = {"counts": counts, "files": files, "file_bytes": file_bytes, "records": count, "sha256": sha}
    for key, value in seen.items():
        if trailer.get(key) != value:
            raise BackupFormatError(f"the backup is corrupted (its trailer's {key} does not match its contents)")


def verify(stream: BinaryIO) -> tuple[dict, dict]:
    """Read the whole backup, checking everything; its header and trailer (BackupFormatError if anything is off)."""
    header = None
    for kind, payload in records(stream):
        if kind == HEADER:
            header = json.loads(payload)
        elif kind == TRAILER:
            return header, json.loads(payload)
    raise AssertionError("records() ends with the trailer or raises")  # pragma: no cover


def decode_docs(payload: bytes) -> list[dict]:
    return bson.decode_all(payload, CODEC)
