"""The WebSocket protocol end to end: handshake, hello, join, messages, acks, errors (real sockets, real store)."""

from __future__ import annotations

import time

import jwt
from twisted.trial.unittest import TestCase

from tests.harness import SECRET, start_server
from tests.wsclient import connect, handshake_status, raw_handshake


class HandshakeTests(TestCase):
    timeout = 60

    async def setUp(self):
        self.server = await start_server(self)
        self.http = self.server.client()
        self.alice = await self.http.register("alice")

    async def test_hello_after_handshake(self):
        """A valid token opens the socket and the first frame is hello with the User and server_time."""
        ws = await connect(self.server.url, self.alice["token"], test=self)
        hello = await ws.next("hello")
        self.assertEqual(hello["user"]["username"], "alice")
        self.assertTrue(hello["user"]["online"])
        self.assertTrue(hello["server_time"].endswith("Z"))

    async def test_bad_tokens_are_refused_with_401(self):
        """Missing, malformed, forged, expired and revoked tokens get HTTP 401 in the handshake."""
        claims = jwt.decode(self.alice["token"], SECRET, algorithms=["HS256"])
        revoked = (await self.http.request("POST", "/api/auth/login", {"username": "alice", "password": "correct horse"})).json()["token"]
        await self.http.request("POST", "/api/auth/logout", token=revoked)
        tokens = {
            "missing": None,
            "malformed": "abc",
            "forged": jwt.encode(claims, b"x" * 40, algorithm="HS256"),
            "expired": jwt.encode({**claims, "exp": int(time.time()) - 10}, SECRET, algorithm="HS256"),
            "revoked": revoked,
        }
        for name, token in tokens.items():
            self.assertEqual(await handshake_status(self.server.url, token), 401, name)

    async def test_compression_offer_is_declined_and_the_socket_works(self):
        """A client offering permessage-deflate (every browser does) connects, uncompressed, and chats."""
        status, headers, first_frame = await raw_handshake(
            self.server.port, self.alice["token"],
            extra="Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n")
        self.assertEqual(status, b"101")
        self.assertNotIn(b"sec-websocket-extensions", headers.lower())
        self.assertIn(b'"type":"hello"', first_frame)

    async def test_refusals_on_the_plain_handshake(self):
        """A handshake as browsers write it: forged token 401, foreign Origin 403, own Origin 101."""
        forged = jwt.encode(jwt.decode(self.alice["token"], SECRET, algorithms=["HS256"]), b"x" * 40, algorithm="HS256")
        status, headers, _ = await raw_handshake(self.server.port, forged)
        self.assertEqual(status, b"401")
        self.assertNotIn(forged.encode(), headers)
        status, _, _ = await raw_handshake(self.server.port, self.alice["token"], extra="Origin: https://evil.example\r\n")
        self.assertEqual(status, b"403")
        own = f"Origin: http://127.0.0.1:{self.server.port}\r\n"
        status, _, first_frame = await raw_handshake(self.server.port, self.alice["token"], extra=own)
        self.assertEqual(status, b"101")
        self.assertIn(b'"type":"hello"', first_frame)

    async def test_other_handshake_forms_are_answered_by_autobahn(self):
        """Forms chatd does not read itself still work or fail as Autobahn decides."""
        status, headers, first_frame = await raw_handshake(
            self.server.port, self.alice["token"], extra="Sec-WebSocket-Protocol: chat, superchat\r\n")
        self.assertEqual(status, b"101")  # no sub-protocol chosen, still a socket
        self.assertNotIn(b"sec-websocket-protocol", headers.lower())
        self.assertIn(b'"type":"hello"', first_frame)
        status, _, _ = await raw_handshake(self.server.port, "bad", extra="Sec-WebSocket-Protocol: chat\r\n")
        self.assertEqual(status, b"401")  # and the token is checked on that path too

    async def test_stopping_the_server_says_going_away(self):
        """A stopping chatd closes its sockets with 1001, so clients know to reconnect rather than hang."""
        from twisted.internet import reactor

        ws = await connect(self.server.url, self.alice["token"], test=self)
        await ws.next("hello")
        await self.server.stop()
        self.assertEqual(await ws.closed.addTimeout(5, reactor), 1001)

    async def test_handshake_arriving_in_pieces(self):
        """A handshake split over many TCP reads (the first only "GET /w") still opens the socket."""
        status, _, first_frame = await raw_handshake(self.server.port, self.alice["token"], piece=6)
        self.assertEqual(status, b"101")
        self.assertIn(b'"type":"hello"', first_frame)

    async def test_upgrade_after_a_request_on_the_same_connection(self):
        """A kept-alive connection that asked for something else first can still upgrade to /ws."""
        before = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{self.server.port}\r\n\r\n".encode()
        status, _, first_frame = await raw_handshake(self.server.port, self.alice["token"], before=before)
        self.assertEqual(status, b"101")
        self.assertIn(b'"type":"hello"', first_frame)

    async def test_a_path_merely_starting_with_ws_is_not_the_socket(self):
        """/wsx is an ordinary (missing) page, not the WebSocket endpoint."""
        status, _, _ = await raw_handshake(self.server.port, self.alice["token"], path="/wsx")
        self.assertEqual(status, b"404")

    async def test_foreign_origin_is_refused_with_403(self):
        """A browser Origin other than the server's own is refused with 403; the same origin is accepted."""
        self.assertEqual(await handshake_status(self.server.url, self.alice["token"], origin="https://evil.example"), 403)
        ws = await connect(self.server.url, self.alice["token"], origin=self.server.url, test=self)
        await ws.next("hello")


class FrameTests(TestCase):
    timeout = 60

    async def setUp(self):
        self.server = await start_server(self)
        self.http = self.server.client()
        self.alice = await self.http.register("alice")
        self.bob = await self.http.register("bob")
        self.a = await connect(self.server.url, self.alice["token"], test=self)
        self.b = await connect(self.server.url, self.bob["token"], test=self)
        await self.a.next("hello")
        await self.b.next("hello")

    async def test_join_send_ack_broadcast(self):
        """Two users join a room; a message (with its author's user_id) is acked to its sender and delivered to both, in seq order."""
        self.a.send({"type": "join", "room": "lobby"})
        joined = await self.a.next("joined")
        self.assertEqual((joined["room"], joined["members"], joined["history"]), ("lobby", ["alice"], []))
        self.b.send({"type": "join", "room": "lobby"})
        self.assertEqual((await self.b.next("joined"))["members"], ["alice", "bob"])
        presence = await self.a.next("presence")
        self.assertEqual((presence["user"], presence["event"], presence["room"]), ("bob", "join", "lobby"))

        self.a.send({"type": "message", "room": "lobby", "text": "hi bob", "client_id": "c1"})
        ack = await self.a.next("ack")
        self.assertEqual((ack["client_id"], ack["room"], ack["seq"], ack["id"]), ("c1", "lobby", 1, "lobby:1"))
        for ws in (self.a, self.b):
            message = await ws.next("message")
            self.assertEqual({k: message[k] for k in ("room", "seq", "id", "user", "user_id", "text", "client_id")},
                             {"room": "lobby", "seq": 1, "id": "lobby:1", "user": "alice",
                              "user_id": self.alice["user"]["id"], "text": "hi bob", "client_id": "c1"})
            self.assertEqual(message["ts"], ack["ts"])
        self.b.send({"type": "message", "room": "lobby", "text": "hello alice"})
        ack = await self.b.next("ack")
        self.assertEqual((ack["client_id"], ack["seq"]), (None, 2))

    async def test_frame_errors_keep_the_socket_open(self):
        """Over a real socket: bytes that are not JSON, and a binary frame, are answered with an error and the
        socket stays usable; 4000 two-byte characters (8000 bytes of UTF-8) are one message within the limit.
        (Every code for every frame in error is in tests/test_chat_frame_errors.py.)"""
        self.a.send_raw(b"{not json")
        self.assertEqual((await self.a.next("error"))["code"], "invalid_json")
        self.a.send_raw(b'{"type": "ping"}', binary=True)
        self.assertEqual((await self.a.next("error"))["code"], "invalid_frame")
        self.a.send({"type": "join", "room": "lobby"})
        await self.a.next("joined")
        self.a.send({"type": "message", "room": "lobby", "text": "é" * 4000})
        self.assertEqual((await self.a.next("ack"))["seq"], 1)
        self.a.send({"type": "ping"})
        self.assertEqual(await self.a.next("pong"), {"type": "pong"})
