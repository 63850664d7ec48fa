"""Acked means stored: crashes, store outages, and two chatd processes sharing one store."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from twisted.trial.unittest import TestCase

from chatd.ratelimit import Rate
from chatd.storage.embedded import free_loopback_port
from tests.harness import (
    ROOT,
    Client,
    NxProcess,
    start_server,
    wait_for_health,
    wait_until,
)
from tests.wsclient import connect

TWISTD = str(Path(sys.executable).with_name("twistd"))


class CrashTests(TestCase):
    timeout = 180

    def _start_daemon(self, data_dir: str, port: int) -> subprocess.Popen:
        env = {**os.environ, "CHATD_BCRYPT_COST": "4", "CHATD_SOCKET_RATE": "10000/s,10000"}
        process = subprocess.Popen(
            [TWISTD, "--logfile", str(Path(data_dir, "chatd.log")), "-n", "--pidfile=", "chatd",
             "--data-dir", data_dir, "--listen", f"tcp:{port}:interface=127.0.0.1"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        self.addCleanup(lambda: process.poll() is None and (process.kill(), process.wait(10)))
        return process

    async def _healthy(self, http: Client, process) -> None:
        await wait_for_health(http, process)
        self.assertIsNone(process.poll(), "chatd died")

    async def test_every_acked_message_survives_sigkill(self):
        """SIGKILL chatd while it is taking messages; after a restart every acked message is in the history."""
        data_dir = tempfile.mkdtemp(prefix="chatd-crash-")
        self.addCleanup(shutil.rmtree, data_dir, True)
        port = free_loopback_port()
        process = self._start_daemon(data_dir, port)
        http = Client(f"http://127.0.0.1:{port}")
        await self._healthy(http, process)
        session = await http.register("alice")
        ws = await connect(http.base_url, session["token"])
        ws.send({"type": "join", "room": "lobby"})
        await ws.next("joined")
        acked = {}
        for i in range(300):
            ws.send({"type": "message", "room": "lobby", "text": f"message {i}", "client_id": f"c{i}"})
        for _ in range(150):
            ack = await ws.next("ack", timeout=20)
            acked[ack["seq"]] = ack["client_id"]
        process.send_signal(signal.SIGKILL)  # mid-stream: more frames are in flight
        process.wait(10)
        await ws.closed
        for frame in list(ws.frames):
            if frame.get("type") == "ack":
                acked[frame["seq"]] = frame["client_id"]

        process = self._start_daemon(data_dir, port)
        await self._healthy(http, process)
        login = await http.request("POST", "/api/auth/login", {"username": "alice", "password": "correct horse"})
        stored, before = {}, None
        while True:
            page = (await http.request("GET", "/api/rooms/lobby/messages?limit=200" + (f"&before={before}" if before else ""),
                                       token=login.json()["token"])).json()
            stored.update({m["seq"]: m for m in page["messages"]})
            before = page["next_before"]
            if before is None:
                break
        self.assertGreaterEqual(len(acked), 150)
        for seq, client_id in acked.items():
            self.assertEqual((stored[seq]["client_id"], stored[seq]["text"]), (client_id, f"message {client_id[1:]}"))
        self.assertEqual(sorted(stored), list(range(1, len(stored) + 1)))  # gap-free, nothing lost before a gap
        process.send_signal(signal.SIGTERM)
        process.wait(30)


class OutageTests(TestCase):
    timeout = 120

    async def test_store_outage_gives_error_not_ack_then_resend_works(self):
        """While the store is down a message gets an `unavailable` error, never an ack; resent later, it is stored once."""
        server = await start_server(self, mongo=None)
        http = server.client()
        session = await http.register("alice")
        ws = await connect(server.url, session["token"], test=self)
        ws.send({"type": "join", "room": "lobby"})
        await ws.next("joined")
        await server.service.embedded.stopService()
        ws.send({"type": "message", "room": "lobby", "text": "during the outage", "client_id": "x1"})
        error = await ws.next("error", "ack", timeout=20)
        self.assertEqual((error["type"], error["code"], error["ref"]), ("error", "unavailable", "x1"))
        server.service.embedded.startService()

        async def stored():
            ws.send({"type": "message", "room": "lobby", "text": "during the outage", "client_id": "x1"})
            frame = await ws.next("error", "ack", timeout=20)
            return frame["type"] == "ack"

        await wait_until(stored, 60, "the message to be stored after the outage", interval=0.5)
        ws.send({"type": "message", "room": "lobby", "text": "during the outage", "client_id": "x1"})
        self.assertEqual((await ws.next("ack"))["seq"], 1)
        page = (await http.request("GET", "/api/rooms/lobby/messages", token=session["token"])).json()
        self.assertEqual([(m["seq"], m["client_id"]) for m in page["messages"]], [(1, "x1")])


class SharedStoreTests(TestCase):
    timeout = 120

    async def test_two_processes_sharing_a_store_keep_seqs_gap_free(self):
        """Two chatd instances writing to one room of one store: seqs stay unique and gap-free."""
        nx = NxProcess().start()
        self.addCleanup(nx.kill)
        uri = nx.uri("shared")
        fast = Rate(10_000, 10_000)
        first = await start_server(self, mongo=uri, socket_rate=fast)
        second = await start_server(self, mongo=uri, socket_rate=fast)
        alice = await first.client().register("alice")
        bob = await second.client().register("bob")
        a = await connect(first.url, alice["token"], test=self)
        b = await connect(second.url, bob["token"], test=self)
        for ws in (a, b):
            ws.send({"type": "join", "room": "lobby"})
            await ws.next("joined")
        for i in range(60):
            a.send({"type": "message", "room": "lobby", "text": f"a{i}", "client_id": f"a{i}"})
            b.send({"type": "message", "room": "lobby", "text": f"b{i}", "client_id": f"b{i}"})
        acks = [await a.next("ack", timeout=30) for _ in range(60)] + [await b.next("ack", timeout=30) for _ in range(60)]
        self.assertEqual(sorted(ack["seq"] for ack in acks), list(range(1, 121)))
        page = (await first.client().request("GET", "/api/rooms/lobby/messages?limit=200", token=alice["token"])).json()
        self.assertEqual([m["seq"] for m in page["messages"]], list(range(1, 121)))
        self.assertEqual(sorted(m["client_id"] for m in page["messages"]), sorted([f"a{i}" for i in range(60)] + [f"b{i}" for i in range(60)]))
