"""Unit tests for the chat's socket limits: the frame rate (``--socket-rate``), token expiry, the rooms cap.

SPEC.md: a refused frame is answered with ``rate_limited`` and the socket stays open; persistent flooding
closes it with 1008; a socket whose token expires without a ``refresh`` is closed with 4001 at expiry.
"""

import json

from zope.interface.verify import verifyObject

from chatd.chat.connection import IChatConnection
from chatd.ratelimit import Rate
from chatd.web.ws import ChatProtocol
from tests.chatharness import START, ChatTestCase, FakeConnection


class ChatLimitsTestCase(ChatTestCase):
    socket_rate = Rate(1, 3)

    def open(self, conn=None):
        return self.chat.open(conn)

    def ping(self, conn, times=1):
        self.chat.ping(conn, times)


class OpenedTests(ChatLimitsTestCase):
    def test_the_socket_and_every_fake_keep_the_connection_contract(self):
        """The Autobahn protocol and the tests' fake connection both provide IChatConnection."""
        self.assertTrue(verifyObject(IChatConnection, FakeConnection()))
        self.assertTrue(IChatConnection.implementedBy(ChatProtocol))
        self.assertTrue(verifyObject(IChatConnection, ChatProtocol()))

    def test_hello_first(self):
        """The first frame on a socket is ``hello`` with the user (online, no password hash) and the server time."""
        conn = self.open()
        self.assertEqual(conn.sent, [{"type": "hello", "server_time": "2024-05-01T12:00:00.000Z", "user": {
            "id": "u1", "username": "alice", "email": "alice@example.com", "role": "user",
            "created_at": "2024-01-01T00:00:00.000Z", "online": True}}])
        self.assertTrue(self.registry.is_online("u1"))


class RateLimitTests(ChatLimitsTestCase):
    """Frames per socket: rate 1/s with a burst of 3 here."""

    def test_burst_answered(self):
        """Within the burst every ping is answered with pong."""
        conn = self.open()
        self.ping(conn, 3)
        self.assertEqual(conn.sent[1:], [{"type": "pong"}] * 3)
        self.assertEqual(conn.closes, [])

    def test_over_burst_rate_limited(self):
        """The frame after the burst is refused with a ``rate_limited`` error, not answered, and the socket stays."""
        conn = self.open()
        self.ping(conn, 4)
        self.assertEqual(conn.types(), ["pong", "pong", "pong", "error"])
        self.assertEqual(conn.sent[-1]["code"], "rate_limited")
        self.assertEqual(conn.closes, [])

    def test_refill(self):
        """After a second one more frame is allowed, and the one after it is refused again."""
        conn = self.open()
        self.ping(conn, 4)
        self.clock.advance(1)
        self.ping(conn)
        self.assertEqual(conn.types(), ["pong", "pong", "pong", "error", "pong"])
        self.ping(conn)
        self.assertEqual(conn.types(), ["pong", "pong", "pong", "error", "pong", "error"])
        self.assertEqual(conn.closes, [])

    def test_refill_is_capped_at_burst(self):
        """A long quiet spell refills only up to the burst."""
        conn = self.open()
        self.clock.advance(60)
        self.ping(conn, 4)
        self.assertEqual(conn.types(), ["pong", "pong", "pong", "error"])

    def test_refused_frames_are_not_handled(self):
        """A refused frame has no effect: a refused join does not join the room."""
        conn = self.open()
        self.ping(conn, 3)
        self.chat.received(conn, b'{"type":"join","room":"lobby"}', False)
        self.assertEqual(conn.types(), ["pong", "pong", "pong", "error"])
        self.assertEqual(list(self.registry.subscribers("lobby")), [])

    def test_invalid_frames_count_too(self):
        """Malformed frames spend the budget like valid ones, so garbage cannot flood either."""
        conn = self.open()
        for _ in range(3):
            self.chat.received(conn, b"garbage", False)
        self.ping(conn)
        self.assertEqual([f.get("code") for f in conn.sent[1:]], ["invalid_json"] * 3 + ["rate_limited"])

    def test_errors_are_not_sent_for_every_refusal(self):
        """While flooding, ``rate_limited`` is answered on the first refusal and then every tenth only."""
        conn = self.open()
        self.ping(conn, 3 + 10)
        errors = [f for f in conn.sent[1:] if f["type"] == "error"]
        self.assertEqual(len(errors), 2)
        self.assertEqual({f["code"] for f in errors}, {"rate_limited"})
        self.assertEqual(conn.closes, [])

    def test_flooding_closes_with_1008(self):
        """Persistent flooding (more than 10 refusals in a row) closes the socket with 1008, once."""
        conn = self.open()
        self.ping(conn, 3 + 10)
        self.assertEqual(conn.closes, [])
        self.ping(conn)
        self.assertEqual(len(conn.closes), 1)
        self.assertEqual(conn.closes[0][0], 1008)

    def test_allowed_frame_forgives_strikes(self):
        """A frame allowed after a pause resets the count: slowing down avoids the close."""
        conn = self.open()
        self.ping(conn, 3 + 9)  # the burst, then 9 refusals
        for _ in range(4):
            self.clock.advance(1)
            self.ping(conn, 1 + 9)  # one allowed, then 9 refusals: never 11 in a row
        self.assertEqual(conn.closes, [])
        self.assertEqual(conn.types().count("pong"), 3 + 4)

    def test_control_frames_share_the_budget(self):
        """WebSocket pings count like frames: past the burst they are refused, and flooding with them closes 1008."""
        conn = self.open()
        self.assertEqual([self.chat.control_frame_allowed(conn) for _ in range(4)], [True, True, True, False])
        self.assertEqual(conn.types(), ["error"])  # the same rate_limited answer as for a frame
        self.ping(conn)
        self.assertEqual(conn.types(), ["error"])  # the frame after them finds the budget spent
        for _ in range(9):
            self.chat.control_frame_allowed(conn)
        self.assertEqual(conn.closes, [(1008, "flooding")])

    def test_sockets_limited_separately(self):
        """One flooding socket does not spend another socket's budget, even of the same user."""
        flooder = self.open(FakeConnection(jti="j1"))
        calm = self.open(FakeConnection(jti="j2"))
        self.ping(flooder, 3 + 11)
        self.ping(calm, 3)
        self.assertEqual(calm.types(), ["pong", "pong", "pong"])
        self.assertEqual(calm.closes, [])
        self.assertEqual(len(flooder.closes), 1)


class ExpiryTests(ChatLimitsTestCase):
    """A socket whose token expires without a refresh is closed with 4001 at expiry."""

    def test_closed_at_expiry(self):
        """Nothing happens before the token's exp; at exp the socket is closed with 4001."""
        conn = self.open(FakeConnection(expires_at=START + 100))
        self.clock.advance(99.5)
        self.assertEqual(conn.closes, [])
        self.clock.advance(0.5)
        self.assertEqual([code for code, _ in conn.closes], [4001])

    def test_already_expired(self):
        """A token that expired by the time the socket opened closes it at once (on the next turn)."""
        conn = self.open(FakeConnection(expires_at=START - 5))
        self.clock.advance(0)
        self.assertEqual([code for code, _ in conn.closes], [4001])

    def test_each_socket_its_own_expiry(self):
        """Sockets with different tokens close at their own tokens' expiry."""
        early = self.open(FakeConnection(jti="a", expires_at=START + 10))
        late = self.open(FakeConnection(jti="b", expires_at=START + 20))
        self.clock.advance(10)
        self.assertEqual([code for code, _ in early.closes], [4001])
        self.assertEqual(late.closes, [])
        self.clock.advance(10)
        self.assertEqual([code for code, _ in late.closes], [4001])

    def test_closed_cancels_timer(self):
        """A socket that closed on its own is not closed again at its token's expiry."""
        conn = self.open(FakeConnection(expires_at=START + 100))
        self.chat.closed(conn)
        self.clock.advance(200)
        self.assertEqual(conn.closes, [])
        self.assertEqual([call for call in self.clock.getDelayedCalls() if "close" in repr(call.func)], [])
        self.assertEqual(self.registry.connection_count(), 0)
        self.assertFalse(self.registry.is_online("u1"))


class RoomCapTests(ChatLimitsTestCase):
    """Issue 9, finding 5: the rooms one user may be a member of are capped (``--max-rooms-per-user``)."""

    max_rooms = 3

    def test_join_past_the_cap_is_forbidden_and_leaving_makes_room(self):
        """With a cap of 3, a fourth room is refused with ``forbidden`` (counted in /metrics); rejoining a
        room one is already a member of is fine; after a leave, a new room can be joined."""
        conn = self.open()
        for room in ("a", "b", "c"):
            self.chat.received(conn, json.dumps({"type": "join", "room": room}).encode(), False)
            self.clock.advance(1)  # the frame rate refills
        self.chat.received(conn, b'{"type":"join","room":"d"}', False)
        self.assertEqual(conn.sent[-1]["type"], "error")
        self.assertEqual(conn.sent[-1]["code"], "forbidden")
        self.assertEqual(self.chat.metrics.limit_refusals.labels("rooms_per_user")._value.get(), 1)
        self.clock.advance(1)
        self.chat.received(conn, b'{"type":"join","room":"a"}', False)
        self.assertEqual(conn.sent[-1]["type"], "joined")
        self.clock.advance(1)
        self.chat.received(conn, b'{"type":"leave","room":"b"}', False)
        self.clock.advance(1)
        self.chat.received(conn, b'{"type":"join","room":"d"}', False)
        self.assertEqual(conn.sent[-1]["type"], "joined")
