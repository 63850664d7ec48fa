"""chatd-admin backup and restore end to end: real twistd chatds on embedded stores, real data, real files."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from twisted.internet import defer, reactor, utils
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from chatd.backup import format as fmt
from chatd.storage.embedded import free_loopback_port
from tests.harness import Client, wait_for_health, wait_until
from tests.test_e2e_files import upload_body
from tests.test_multipart import CTYPE
from tests.wsclient import connect

TWISTD = str(Path(sys.executable).with_name("twistd"))
CHATD_ADMIN = str(Path(sys.executable).with_name("chatd-admin"))
SECRET = "backup-test-secret-that-is-at-least-32-bytes"
MESSAGES = 2000  # in the lobby, before the backup
FILES = [os.urandom(3 * 1024 * 1024 + 17), os.urandom(5 * 1024 * 1024)]


def environment(port: int, data_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATD_")}
    env.update(CHATD_LISTEN=f"tcp:{port}:interface=127.0.0.1", CHATD_BCRYPT_COST="4", CHATD_DATA_DIR=str(data_dir),
               CHATD_JWT_SECRET=SECRET, CHATD_SOCKET_RATE="100000/s,100000", CHATD_AUTH_RATE="0",
               CHATD_MAX_UPLOAD=str(8 * 1024 * 1024))
    return env


def backup_contents(path: Path) -> dict:
    """The documents of a backup file by collection (the file is small enough here to hold)."""
    found: dict = {}
    current = None
    with open(path, "rb") as stream:
        for kind, payload in fmt.records(stream):
            if kind == fmt.COLLECTION:
                current = fmt.decode_docs(payload)[0]["name"]
            elif kind == fmt.DOCS:
                found.setdefault(current, []).extend(fmt.decode_docs(payload))
    return found


class BackupRestoreTests(TestCase):
    timeout = 600

    def setUp(self):
        self.root = Path(tempfile.mkdtemp(prefix="chatd-backup-"))
        self.addCleanup(shutil.rmtree, self.root, True)

    async def chatd(self, data_dir: Path):
        """A twistd chatd on ``data_dir``: (its HTTP client, a function stopping it)."""
        port = free_loopback_port()
        log = open(self.root / f"{data_dir.name}.log", "ab")
        process = subprocess.Popen([TWISTD, "-n", "chatd"], cwd=self.root, env=environment(port, data_dir),
                                   stdout=log, stderr=subprocess.STDOUT)
        log.close()

        async def stop():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                await wait_until(lambda: process.poll() is not None, 30, "chatd to stop")

        self.addCleanup(lambda: process.poll() is None and (process.kill(), process.wait(10)))
        http = Client(f"http://127.0.0.1:{port}")
        await wait_for_health(http, process)
        self.assertIsNone(process.poll(), (self.root / f"{data_dir.name}.log").read_text(errors="replace"))
        return http, stop

    async def admin(self, data_dir: Path, *args: str):
        out, err, code = await utils.getProcessOutputAndValue(
            CHATD_ADMIN, ["--data-dir", str(data_dir), *args], env=environment(0, data_dir), path=str(self.root))
        return code, out.decode() + err.decode()

    async def history(self, http, token, room) -> list[dict]:
        """Every message of ``room`` through `join` with `since`, as a client catching up sees it (a join
        answers a bounded number: joined again from the last one until nothing more comes)."""
        messages: list = []
        while True:
            ws = await connect(http.base_url, token, test=self)
            await ws.next("hello")
            ws.send({"type": "join", "room": room, "since": messages[-1]["seq"] if messages else 0})
            page = (await ws.next("joined"))["history"]
            await ws.close()
            if not page:
                return messages
            messages.extend(page)

    async def populate(self, http):
        alice = await http.register("alice", password="alice password")
        bob = await http.register("bob")
        carol = await http.register("carol")
        ws = await connect(http.base_url, alice["token"], test=self)
        await ws.next("hello")
        ws.send({"type": "join", "room": "lobby"})
        await ws.next("joined")
        for i in range(MESSAGES):
            ws.send({"type": "message", "room": "lobby", "text": f"message {i} for @bob", "client_id": f"c{i}"})
        for _ in range(MESSAGES):
            await ws.next("ack", timeout=60)
        ws.send({"type": "message", "room": "lobby", "text": "a reply", "reply_to": 10})
        await ws.next("ack")
        await ws.close()
        self.assertEqual((await http.request("PUT", "/api/rooms/lobby/messages/10/reactions/%F0%9F%91%8D",
                                             token=bob["token"])).status, 403)  # bob is not a member yet
        b = await connect(http.base_url, bob["token"], test=self)
        await b.next("hello")
        b.send({"type": "join", "room": "lobby"})
        await b.next("joined")
        b.send({"type": "read", "room": "lobby", "seq": 1500})
        await b.close()
        self.assertEqual((await http.request("PUT", "/api/rooms/lobby/messages/10/reactions/%F0%9F%91%8D",
                                             token=bob["token"])).status, 204)
        made = await http.request("POST", "/api/rooms", {"name": "hideout", "visibility": "private"},
                                  token=alice["token"])
        self.assertEqual(made.status, 201, made)
        await http.request("POST", "/api/rooms/hideout/members", {"user": "bob"}, token=alice["token"])
        dm = (await http.request("POST", "/api/dms", {"users": ["bob"]}, token=alice["token"])).json()["name"]
        urls = []
        for i, data in enumerate(FILES):
            up = await http.request("POST", "/api/rooms/hideout/files", raw=upload_body(f"f{i}.bin", data),
                                    token=alice["token"], content_type=CTYPE)
            self.assertEqual(up.status, 201, up)
            urls.append(up.json()["message"]["file"]["url"] if "message" in up.json() else up.json()["file"]["url"])
        ws = await connect(http.base_url, alice["token"], test=self)
        await ws.next("hello")
        ws.send({"type": "join", "room": dm})
        await ws.next("joined")
        ws.send({"type": "message", "room": dm, "text": "psst"})
        await ws.next("ack")
        await ws.close()
        second = await http.request("POST", "/api/auth/login", {"username": "bob", "password": "correct horse"})
        revoked = second.json()["token"]
        self.assertEqual((await http.request("POST", "/api/auth/logout", token=revoked)).status, 204)
        return {"alice": alice, "bob": bob, "carol": carol, "dm": dm, "urls": urls, "revoked": revoked}

    async def keep_writing(self, http, token, stop: list):
        """Carol sends to 'busy' until ``stop`` holds something; the number of acks."""
        ws = await connect(http.base_url, token, test=self)
        await ws.next("hello")
        ws.send({"type": "join", "room": "busy"})
        await ws.next("joined")
        sent = 0
        while not stop:
            for _ in range(20):
                ws.send({"type": "message", "room": "busy", "text": f"busy {sent}"})
                sent += 1
            for _ in range(20):
                await ws.next("ack", timeout=30)
            await deferLater(reactor, 0.005)
        await ws.close()
        return sent

    async def test_backup_while_writing_then_restore(self):
        """A backup taken while a client keeps sending is gap-free in every room; restored onto a fresh data dir,
        and with --force onto a used one (refused without), a fresh chatd serves the same users, passwords,
        revocations, rooms, histories seq by seq, read positions, mentions, reactions, threads and files, and
        continues each room at head + 1; a corrupted backup is refused and changes nothing."""
        source = self.root / "source"
        http, stop_source = await self.chatd(source)
        data = await self.populate(http)
        alice, bob, carol = data["alice"], data["bob"], data["carol"]
        stop: list = []
        writer = defer.ensureDeferred(self.keep_writing(http, carol["token"], stop))
        await deferLater(reactor, 0.5)
        backup = self.root / "chatd.backup"
        code, output = await self.admin(source, "backup", str(backup))
        self.assertEqual(code, 0, output)
        stop.append(True)
        sent = await writer
        self.assertGreater(sent, 0)

        # Refused while a chatd serves the target.
        code, output = await self.admin(source, "restore", str(backup), "--force")
        self.assertEqual((code, "stop it before restoring" in output), (1, True), output)

        contents = backup_contents(backup)
        heads = {room["_id"]: room["last_seq"] for room in contents["rooms"]}
        by_room: dict = {}
        for message in contents["messages"]:
            by_room.setdefault(message["room"], []).append(message["seq"])
        for room, seqs in by_room.items():
            self.assertEqual(seqs, list(range(1, heads[room] + 1)), room)  # gap-free, and the head matches
        self.assertGreater(heads["busy"], 0)
        self.assertGreater(sent, heads["busy"])  # the writer kept going past what the backup took
        self.assertEqual(heads["lobby"], MESSAGES + 1)

        before = {room: await self.history(http, alice["token"], room) for room in ("lobby", "hideout", data["dm"])}
        self.assertEqual([len(before[room]) for room in ("lobby", "hideout", data["dm"])], [MESSAGES + 1, 2, 1])
        sessions = (await http.request("GET", "/api/sessions", token=bob["token"])).json()["sessions"]
        reads = (await http.request("GET", "/api/rooms/lobby/reads", token=alice["token"])).json()
        await stop_source()

        # Onto a fresh data dir.
        fresh = self.root / "fresh"
        code, output = await self.admin(fresh, "restore", str(backup))
        self.assertEqual(code, 0, output)
        # A corrupted copy is refused with one line, onto the now restored store, and changes nothing.
        broken = self.root / "broken.backup"
        raw = bytearray(backup.read_bytes())
        raw[len(raw) // 2] ^= 0x01
        broken.write_bytes(bytes(raw))
        code, output = await self.admin(fresh, "restore", str(broken), "--force")
        self.assertEqual(code, 1, output)
        self.assertIn("corrupted", output)
        self.assertIn("nothing was changed", output)
        truncated = self.root / "truncated.backup"
        truncated.write_bytes(backup.read_bytes()[:-100])
        code, output = await self.admin(fresh, "restore", str(truncated), "--force")
        self.assertEqual((code, "truncated" in output), (1, True), output)

        http, stop_fresh = await self.chatd(fresh)
        login = await http.request("POST", "/api/auth/login", {"username": "alice", "password": "alice password"})
        self.assertEqual(login.status, 200, login)
        self.assertEqual((await http.request("GET", "/api/rooms", token=bob["token"])).status, 200)
        self.assertEqual((await http.request("GET", "/api/rooms", token=data["revoked"])).status, 401)
        for room, messages in before.items():
            after = await self.history(http, alice["token"], room)
            self.assertEqual(after, messages, room)
        self.assertEqual((await http.request("GET", "/api/sessions", token=bob["token"])).json()["sessions"],
                         sessions)
        self.assertEqual((await http.request("GET", "/api/rooms/lobby/reads", token=alice["token"])).json(), reads)
        self.assertEqual(before["lobby"][9]["reactions"], {"\N{THUMBS UP SIGN}": ["bob"]})
        self.assertIn("bob", before["lobby"][0]["mentions"])
        thread = (await http.request("GET", "/api/rooms/lobby/messages/10/thread", token=alice["token"])).json()
        self.assertEqual([m["text"] for m in thread["messages"]], ["a reply"])
        for url, expected in zip(data["urls"], FILES):
            got = await http.request("GET", url, token=bob["token"])
            self.assertEqual((got.status, got.body == expected), (200, True))
        # Catching up with since, and new messages at head + 1.
        ws = await connect(http.base_url, carol["token"], test=self)
        await ws.next("hello")
        ws.send({"type": "join", "room": "lobby", "since": MESSAGES - 4})
        joined = await ws.next("joined")
        self.assertEqual([m["seq"] for m in joined["history"]], list(range(MESSAGES - 3, MESSAGES + 2)))
        for room in ("lobby", "busy"):
            if room == "busy":
                ws.send({"type": "join", "room": "busy"})
                await ws.next("joined")
            ws.send({"type": "message", "room": room, "text": "after the restore"})
            self.assertEqual((await ws.next("ack"))["seq"], heads[room] + 1, room)
        await ws.close()
        await stop_fresh()

        # Onto the used source: refused without --force, replaced with it.
        code, output = await self.admin(source, "restore", str(backup))
        self.assertEqual((code, "--force" in output), (1, True), output)
        code, output = await self.admin(source, "restore", str(backup), "--force")
        self.assertEqual(code, 0, output)
        http, stop_source = await self.chatd(source)
        self.assertEqual(await self.history(http, alice["token"], "lobby"), before["lobby"])
        ws = await connect(http.base_url, carol["token"], test=self)
        await ws.next("hello")
        ws.send({"type": "join", "room": "busy"})
        await ws.next("joined")
        ws.send({"type": "message", "room": "busy", "text": "after the forced restore"})
        self.assertEqual((await ws.next("ack"))["seq"], heads["busy"] + 1)
        await ws.close()
        await stop_source()
