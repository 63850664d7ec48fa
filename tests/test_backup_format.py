"""The backup file format (chatd.backup.format) and the progress display, in memory."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import datetime, timezone

from bson import ObjectId
from twisted.trial import unittest

from chatd.backup import format as fmt
from chatd.backup.progress import Progress

WHEN = datetime(2026, 3, 1, 12, 30, 15, 123000, tzinfo=timezone.utc)
USER = {"_id": ObjectId(), "username": "alice", "password_hash": b"$2b$04$hash\x00\xff", "created_at": WHEN}


def backup_bytes(file_data: bytes = b"0123456789" * 5000, messages: int = 30) -> bytes:
    out = io.BytesIO()
    writer = fmt.Writer(out)
    writer.header({"chatd": "0.1.0", "schema": 3, "created_at": WHEN.isoformat()})
    writer.collection("users")
    writer.docs([USER])
    writer.collection("messages")
    writer.docs([{"_id": f"general:{seq}", "room": "general", "seq": seq, "ts": WHEN, "text": "hé"}
                 for seq in range(1, messages + 1)])
    writer.collection("uploads")
    writer.file({"_id": ObjectId(), "name": "a.bin", "size": len(file_data)})
    for start in range(0, len(file_data), 7000):
        writer.chunk(file_data[start:start + 7000])
    writer.file_end()
    writer.trailer()
    return out.getvalue()


def read_all(data: bytes) -> dict:
    """Every document and file of a backup, by collection."""
    found: dict = {"files": []}
    current = None
    for kind, payload in fmt.records(io.BytesIO(data)):
        if kind == fmt.COLLECTION:
            current = fmt.decode_docs(payload)[0]["name"]
        elif kind == fmt.DOCS:
            found.setdefault(current, []).extend(fmt.decode_docs(payload))
        elif kind == fmt.FILE:
            found["files"].append(b"")
        elif kind == fmt.BYTES:
            found["files"][-1] += payload
    return found


class FormatTests(unittest.TestCase):

    def test_round_trip_keeps_types_exactly(self):
        """ObjectIds, datetimes (to the millisecond, in UTC), bytes and text come back as they went in."""
        data = b"\x00\x01" * 40000
        found = read_all(backup_bytes(data))
        self.assertEqual(found["users"], [USER])
        self.assertEqual([m["seq"] for m in found["messages"]], list(range(1, 31)))
        self.assertEqual(found["messages"][0]["ts"], WHEN)
        self.assertEqual(found["files"], [data])

    def test_verify_returns_header_and_trailer(self):
        """verify() gives the header (versions) and the trailer's counts."""
        header, trailer = fmt.verify(io.BytesIO(backup_bytes()))
        self.assertEqual((header["format"], header["schema"], header["chatd"]), (fmt.FORMAT_VERSION, 3, "0.1.0"))
        self.assertEqual(trailer["counts"], {"users": 1, "messages": 30, "uploads": 0})
        self.assertEqual((trailer["files"], trailer["file_bytes"]), (1, 50000))

    def test_truncation_anywhere_is_refused(self):
        """A file cut at any of many offsets (inside records and between them) is refused as truncated or corrupt."""
        data = backup_bytes()
        for cut in list(range(0, 200)) + list(range(200, len(data), 97)) + [len(data) - 1]:
            with self.assertRaises(fmt.BackupFormatError, msg=f"cut at {cut}"):
                fmt.verify(io.BytesIO(data[:cut]))

    def test_flipped_byte_is_refused(self):
        """One flipped bit anywhere past the magic line fails a checksum (or the structure) and is refused."""
        data = backup_bytes()
        for offset in range(len(fmt.MAGIC), len(data), 331):
            broken = bytearray(data)
            broken[offset] ^= 0x10
            with self.assertRaises(fmt.BackupFormatError, msg=f"flip at {offset}"):
                fmt.verify(io.BytesIO(bytes(broken)))

    def test_other_format_version_is_refused(self):
        """A header of another format version is refused, naming the version."""
        out = io.BytesIO()
        writer = fmt.Writer(out)
        writer._record(fmt.HEADER, json.dumps({"format": 99}).encode())
        writer.trailer()
        with self.assertRaisesRegex(fmt.BackupFormatError, "format 99"):
            fmt.verify(io.BytesIO(out.getvalue()))

    def test_not_a_backup_and_trailing_data(self):
        """Another kind of file, and a backup with bytes appended after its trailer, are refused."""
        with self.assertRaisesRegex(fmt.BackupFormatError, "not a chatd backup"):
            fmt.verify(io.BytesIO(b"PK\x03\x04 a zip file"))
        with self.assertRaisesRegex(fmt.BackupFormatError, "after its trailer"):
            fmt.verify(io.BytesIO(backup_bytes() + b"x"))

    def test_file_bytes_swapped_between_records_are_refused(self):
        """A record replaced by another valid record (checksums intact) is caught by the file's SHA-256 or the
        trailer's running hash."""
        out = io.BytesIO()
        writer = fmt.Writer(out)
        writer.header({"schema": 3})
        writer.file({"_id": ObjectId(), "size": 3})
        writer.chunk(b"abc")
        writer._file_sha = hashlib.sha256(b"abd")  # what a tampered file would claim
        writer.file_end()
        writer.trailer()
        with self.assertRaisesRegex(fmt.BackupFormatError, "bytes do not match"):
            fmt.verify(io.BytesIO(out.getvalue()))

    def test_big_batches_split_into_bounded_records(self):
        """A batch larger than a record's share is split: no record exceeds the limit, and all documents arrive."""
        self.patch(fmt, "MAX_RECORD", 4096)
        out = io.BytesIO()
        writer = fmt.Writer(out)
        writer.header({})
        writer.collection("messages")
        writer.docs([{"_id": i, "text": "x" * 300} for i in range(100)])
        writer.trailer()
        self.assertGreater(writer.records, 20)
        self.assertEqual(len(read_all(out.getvalue())["messages"]), 100)


class ProgressTests(unittest.TestCase):

    def test_plain_lines_every_few_seconds(self):
        """Off a terminal: one plain line per few seconds with MiB and items, and a final line."""
        now = [0.0]
        out = io.StringIO()
        progress = Progress("backup", out, clock=lambda: now[0])
        for _ in range(100):
            now[0] += 0.125
            progress.add(1024 * 1024, 10)
        progress.done()
        lines = out.getvalue().splitlines()
        self.assertEqual(len(lines), 3)  # at 5 s, at 10 s (of 12.5), and done
        self.assertIn("100.0 MiB, 1,000 items", lines[-1])
        self.assertNotIn("\r", out.getvalue())

    def test_bar_on_a_terminal(self):
        """On a terminal: a redrawn bar with the fraction done, bytes and items."""

        class Terminal(io.StringIO):
            def isatty(self):
                return True

        now = [0.0]
        out = Terminal()
        progress = Progress("restore", out, total_bytes=10 * 1024 * 1024, clock=lambda: now[0])
        now[0] = 1.0
        progress.add(5 * 1024 * 1024, 7)
        self.assertIn("\rrestore [###############               ]  50% 5.0 MiB, 7 items", out.getvalue())
