"""The backup's reading side (chatd.backup.dump) on a real store, and `chatd-admin backup -` / `restore` with --mongo."""

from __future__ import annotations

import io
import os
import sys
from datetime import datetime, timezone

from pathlib import Path

from twisted.internet import reactor, utils
from twisted.trial.unittest import TestCase

from chatd.backup import dump
from chatd.backup import format as fmt
from chatd.backup.progress import Progress
from chatd.storage.records import Message
from tests.harness import started_mongo_store
from tests.test_backup_format import read_all

CHATD_ADMIN = str(Path(sys.executable).with_name("chatd-admin"))
NOW = datetime(2026, 5, 1, tzinfo=timezone.utc)


def messages(room: str, seqs) -> list[Message]:
    return [Message(room, seq, "0" * 24, "alice", NOW, f"text {seq}", None, None) for seq in seqs]


class DumpTests(TestCase):
    timeout = 60

    async def backup(self, store) -> tuple[dict, dump.Dumper]:
        out = io.BytesIO()
        dumper = dump.Dumper(reactor, store, fmt.Writer(out), Progress("backup", io.StringIO()))
        await dumper.dump()
        return read_all(out.getvalue()), dumper

    async def test_a_hole_ends_the_room_and_its_head(self):
        """A seq still missing after the re-reads (a write in flight) ends its room just before it, and the room's
        head in the backup says so: the backup has 1..50 and head 50, not 1..60 with a hole."""
        self.patch(dump, "HOLE_RETRIES", 2)
        store = await started_mongo_store(self)
        await store.create_room("general", "public", "", None, NOW)
        await store.insert_messages(messages("general", range(1, 51)))
        await store.insert_messages(messages("general", range(52, 61)))
        await store.advance_rooms({"general": (60, NOW)})
        found, dumper = await self.backup(store)
        self.assertEqual([m["seq"] for m in found["messages"]], list(range(1, 51)))
        self.assertEqual([r["last_seq"] for r in found["rooms"]], [50])
        self.assertEqual(dumper.left_out, {"general": 10})

    async def test_a_lagging_head_is_probed_past(self):
        """chatd records heads lazily: messages stored past the recorded head (here 240 of them) are in the backup,
        and the head in it is the last one."""
        store = await started_mongo_store(self)
        await store.create_room("general", "public", "", None, NOW)
        await store.insert_messages(messages("general", range(1, 251)))
        await store.advance_rooms({"general": (10, NOW)})
        found, _ = await self.backup(store)
        self.assertEqual([m["seq"] for m in found["messages"]], list(range(1, 251)))
        self.assertEqual([r["last_seq"] for r in found["rooms"]], [250])

    async def test_every_collection_is_backed_up(self):
        """A collection chatd's backup code has never heard of is in the backup, found by listing the database."""
        store = await started_mongo_store(self)
        await store._db.widgets.insert_many([{"_id": i, "size": i * 2} for i in range(2500)])
        found, _ = await self.backup(store)
        self.assertEqual(found["widgets"], [{"_id": i, "size": i * 2} for i in range(2500)])


class MongoCommandLineTests(TestCase):
    timeout = 120

    async def test_backup_to_standard_output_and_restore_with_mongo(self):
        """`chatd-admin --mongo URI backup -` writes the backup to standard output (its summary to standard error);
        `restore` puts it on another database, and refuses the now used one without --force."""
        store = await started_mongo_store(self)
        await store.create_room("general", "public", "", None, NOW)
        await store.insert_messages(messages("general", range(1, 31)))
        source = store._pool.uri["nodelist"][0]
        uri = lambda database: f"mongodb://{source[0]}:{source[1]}/{database}"  # noqa: E731
        out, err, code = await utils.getProcessOutputAndValue(
            CHATD_ADMIN, ["--mongo", uri(store._db.name), "backup", "-"], env=dict(os.environ))
        self.assertEqual(code, 0, err)
        self.assertIn(b"30 messages", err)
        self.assertEqual(fmt.verify(io.BytesIO(out))[1]["counts"]["messages"], 30)
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(out)
        target = uri(f"{store._db.name}_restored")
        for force, expected in (((), 0), ((), 1), (("--force",), 0)):
            out, err, code = await utils.getProcessOutputAndValue(
                CHATD_ADMIN, ["--mongo", target, "restore", path, *force], env=dict(os.environ))
            self.assertEqual(code, expected, err)
        self.assertIn(b"restore with --force", (await utils.getProcessOutputAndValue(
            CHATD_ADMIN, ["--mongo", target, "restore", path], env=dict(os.environ)))[1])
