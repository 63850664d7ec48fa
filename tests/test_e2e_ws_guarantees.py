"""SPEC.md's guarantees on real sockets: ordering, idempotency across a restart, revocation, limits, slow
consumers, dead peers.

The rules behind them (a resent client_id, expiry and refresh, the rate limit) are unit tests on the chat
harness: tests/test_chat_messages.py, test_chat_sessions.py, test_chat_limits.py.
"""

from __future__ import annotations

import base64
import os
import socket

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.trial.unittest import TestCase

from chatd.ratelimit import Rate
from chatd.web.ws import OUTBOX_LIMIT
from tests.harness import start_server, wait_until
from tests.wsclient import connect

FAST = Rate(10_000, 10_000)


class _Helpers:
    async def _setup(self, **config):
        self.server = await start_server(self, **config)
        self.http = self.server.client()

    async def _user(self, name):
        session = await self.http.register(name)
        ws = await connect(self.server.url, session["token"], test=self)
        await ws.next("hello")
        return session, ws

    async def _join(self, ws, room="lobby"):
        ws.send({"type": "join", "room": room})
        return await ws.next("joined")


class OrderingTests(_Helpers, TestCase):
    timeout = 120

    async def test_concurrent_senders_get_gap_free_ordered_seqs(self):
        """Five sockets sending at once: every receiver sees seq 1..N once each, in order, matching the acks."""
        await self._setup(socket_rate=FAST)
        sockets = [(await self._user(f"sender{i}"))[1] for i in range(5)]
        for ws in sockets:
            await self._join(ws)
        per_sender = 40
        for n in range(per_sender):
            for i, ws in enumerate(sockets):
                ws.send({"type": "message", "room": "lobby", "text": f"{i}-{n}", "client_id": f"{i}-{n}"})
        total = per_sender * len(sockets)
        for i, ws in enumerate(sockets):
            received = [await ws.next("message", timeout=20) for _ in range(total)]
            self.assertEqual([m["seq"] for m in received], list(range(1, total + 1)))
            acks = [await ws.next("ack") for _ in range(per_sender)]
            by_text = {m["text"]: m["seq"] for m in received}
            self.assertEqual([a["seq"] for a in acks], [by_text[f"{i}-{n}"] for n in range(per_sender)])
            self.assertEqual([a["client_id"] for a in acks], [f"{i}-{n}" for n in range(per_sender)])
        self.assertLess(self.server.service.writer.batches, total)  # written in batches, not one by one

    async def test_resend_after_restart_is_found_in_the_store(self):
        """After a restart (nothing in memory), a resent client_id is still acked with its original seq."""
        await self._setup(mongo=None)
        alice, a = await self._user("alice")
        await self._join(a)
        a.send({"type": "message", "room": "lobby", "text": "durable", "client_id": "k1"})
        original = await a.next("ack")
        await a.close()
        config = self.server.config
        await self.server.stop()
        from tests.harness import Server
        self.server = await Server(config).start()
        self.addCleanup(lambda: defer.ensureDeferred(self.server.stop()))
        a = await connect(self.server.url, alice["token"], test=self)
        await self._join(a)
        a.send({"type": "message", "room": "lobby", "text": "durable", "client_id": "k1"})
        again = await a.next("ack")
        self.assertEqual((again["seq"], again["id"]), (original["seq"], original["id"]))
        a.send({"type": "message", "room": "lobby", "text": "next", "client_id": "k2"})
        self.assertEqual((await a.next("ack"))["seq"], original["seq"] + 1)


class TokenTests(_Helpers, TestCase):
    timeout = 60

    async def test_logout_delete_and_password_change_close_sockets(self):
        """Logout closes that token's sockets, a password change or deletion all the user's, with 4001."""
        await self._setup()
        alice, a = await self._user("alice")
        other_login = (await self.http.request("POST", "/api/auth/login", {"username": "alice", "password": "correct horse"})).json()
        a2 = await connect(self.server.url, other_login["token"], test=self)
        await a2.next("hello")
        await self.http.request("POST", "/api/auth/logout", token=alice["token"])
        self.assertEqual(await a.closed, 4001)
        self.assertFalse(a2.closed.called)
        await self.http.request("PATCH", f"/api/users/{alice['user']['id']}", {"password": "a new password"}, token=other_login["token"])
        self.assertEqual(await a2.closed, 4001)
        bob, b = await self._user("bob")
        await self.http.request("DELETE", f"/api/users/{bob['user']['id']}", token=bob["token"])
        self.assertEqual(await b.closed, 4001)


class LimitTests(_Helpers, TestCase):
    timeout = 120

    async def test_oversize_frame_closes_with_1009(self):
        """A frame over 64 KiB closes the socket with 1009."""
        await self._setup()
        _, a = await self._user("alice")
        a.send_raw(b'{"type":"ping","pad":"' + b"x" * (64 * 1024) + b'"}')
        self.assertEqual(await a.closed, 1009)

    async def test_flooding_is_rate_limited_then_closed_with_1008(self):
        """Past the socket rate the client gets rate_limited errors; if it keeps flooding, close 1008."""
        await self._setup(socket_rate=Rate(1, 5))
        _, a = await self._user("alice")
        for _ in range(30):
            a.send({"type": "ping"})
        self.assertEqual((await a.next("error"))["code"], "rate_limited")
        self.assertEqual(await a.closed, 1008)

    async def test_stalled_reader_is_dropped_and_others_unaffected(self):
        """A socket that stops reading is closed (4008) with bounded memory; the others get everything."""
        await self._setup(socket_rate=FAST)
        sender_session, sender = await self._user("sender")
        _, reader = await self._user("reader")
        staller_session = await self.http.register("staller")
        staller = await _stalled_socket(self.server.port, staller_session["token"])
        self.addCleanup(staller.transport.abortConnection)
        await self._join(sender)
        await self._join(reader)
        staller.join("lobby")
        await wait_until(lambda: self.server.service.registry.online_count("lobby") == 3, 10, "the staller to join")
        staller.stop_reading()
        text = "x" * 3900
        chat = self.server.service.chat
        sent = 0
        # Keep the room busy until the staller's kernel buffers, Twisted's buffer and the
        # 1 MiB bound are all full (bounded: 4000 messages, about 16 MB per receiver).
        while chat.slow_consumers == 0 and sent < 4000:
            for _ in range(100):
                sender.send({"type": "message", "room": "lobby", "text": text, "client_id": str(sent)})
                sent += 1
            await sender.next("ack", timeout=20)
            received = [await reader.next("message", timeout=20) for _ in range(100)]
            self.assertEqual([m["seq"] for m in received], list(range(sent - 99, sent + 1)))
        self.assertEqual(chat.slow_consumers, 1)
        metrics = (await self.http.request("GET", "/metrics")).body
        self.assertIn(b"chatd_slow_consumers_dropped_total 1.0", metrics)
        await wait_until(lambda: self.server.service.registry.online_count("lobby") == 2, 20, "the staller to go offline")
        sender.send({"type": "message", "room": "lobby", "text": "still flowing", "client_id": "last"})
        self.assertEqual((await reader.next("message", timeout=10))["text"], "still flowing")
        metrics = (await self.http.request("GET", "/metrics")).body.decode()
        [peak] = [line for line in metrics.splitlines() if line.startswith("chatd_outbox_peak_bytes ")]
        self.assertLessEqual(float(peak.split()[1]), OUTBOX_LIMIT + 8 * 1024)  # one frame past the bound at most


class DeadPeerTests(_Helpers, TestCase):
    timeout = 60

    async def test_peer_that_stops_answering_pings_is_dropped_and_goes_offline(self):
        """Auto-ping: a socket whose peer is gone (no pong) is dropped, and the user goes offline."""
        await self._setup(ping_interval=1.0)
        _, watcher = await self._user("watcher")
        await self._join(watcher)
        ghost_session = await self.http.register("ghost")
        ghost = await _stalled_socket(self.server.port, ghost_session["token"])
        self.addCleanup(ghost.transport.abortConnection)
        ghost.join("lobby")
        await watcher.next("presence")  # ghost joined
        ghost.stop_reading()  # never reads the pings, so never answers them
        offline = await watcher.next("presence", timeout=10)
        self.assertEqual((offline["user"], offline["event"]), ("ghost", "offline"))
        self.assertFalse(self.server.service.registry.is_online(ghost_session["user"]["id"]))


class _RawSocket(protocol.Protocol):
    """A WebSocket client that can stop reading entirely (a stalled browser tab)."""

    def __init__(self, token):
        self.token = token
        self.upgraded = defer.Deferred()
        self.buffer = b""

    def connectionMade(self):
        self.transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(
            f"GET /ws?token={self.token} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def dataReceived(self, data):
        self.buffer += data
        if not self.upgraded.called and b"\r\n\r\n" in self.buffer:
            self.upgraded.callback(self.buffer.split(b" ", 2)[1])

    def join(self, room):
        payload = ('{"type":"join","room":"%s"}' % room).encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

    def stop_reading(self):
        self.transport.pauseProducing()


async def _stalled_socket(port, token):
    raw = _RawSocket(token)
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), raw)
    status = await raw.upgraded
    assert status == b"101", status
    return raw
