"""Frames in error on the chat harness (SPEC.md: Error codes on the socket, Details: Frames in error).

Each refused frame is answered with one ``error`` frame carrying SPEC.md's code (and the ``client_id`` of
a refused ``message`` as ``ref``), changes nothing, and leaves the socket open and usable.
"""

from __future__ import annotations

from tests.chatharness import ChatTestCase

MALFORMED = [
    (b"{not json", "invalid_json"),
    (b"\xff\xfe", "invalid_json"),
    (b"[1, 2]", "invalid_frame"),
    (b'"a string"', "invalid_frame"),
    (b"{}", "invalid_frame"),
    (b'{"type": 5}', "invalid_frame"),
    (b'{"type": "dance"}', "unknown_type"),
    (b'{"type": "join", "room": "bad room!"}', "invalid_frame"),
    (b'{"type": "join", "room": ".."}', "invalid_frame"),
    (b'{"type": "join", "room": "lobby", "since": -1}', "invalid_frame"),
    (b'{"type": "typing", "room": "lobby", "typing": "yes"}', "invalid_frame"),
    (b'{"type": "read", "room": "lobby"}', "invalid_frame"),
    (b'{"type": "refresh"}', "invalid_frame"),
]

NOT_JOINED = [
    b'{"type": "message", "room": "lobby", "text": "x"}',
    b'{"type": "typing", "room": "lobby", "typing": true}',
    b'{"type": "read", "room": "lobby", "seq": 1}',
    b'{"type": "leave", "room": "lobby"}',
]


class FrameErrorTests(ChatTestCase):
    def setUp(self):
        super().setUp()
        self.alice = self.chat.connect("alice")
        self.alice.take()

    def answers(self, payload: bytes, is_binary: bool = False) -> list[dict]:
        """The frames ``payload`` was answered with."""
        self.chat.received(self.alice, payload, is_binary)
        return self.alice.take()

    def assertStillUsable(self) -> None:
        """The socket was not closed and still answers a ping."""
        self.assertEqual(self.alice.closes, [])
        self.assertEqual(self.answers(b'{"type": "ping"}'), [{"type": "pong"}])

    def test_malformed_frames_get_their_codes_and_the_socket_stays_open(self):
        """Broken JSON is ``invalid_json``; JSON that is not an object with a string type, or a known frame
        with bad fields, is ``invalid_frame``; an unknown type is ``unknown_type``. Each is one error frame
        with a message for people, and the socket goes on."""
        for payload, code in MALFORMED:
            [error] = self.answers(payload)
            self.assertEqual((error["type"], error["code"]), ("error", code), payload)
            self.assertEqual(set(error), {"type", "code", "message"}, payload)
            self.assertIsInstance(error["message"], str)
        self.assertStillUsable()

    def test_binary_frame_is_invalid_frame(self):
        """A binary frame, even holding valid JSON, is ``invalid_frame``."""
        self.assertEqual([f["code"] for f in self.answers(b'{"type": "ping"}', is_binary=True)], ["invalid_frame"])
        self.assertStillUsable()

    def test_room_frames_before_join_are_not_in_room(self):
        """``message``, ``typing``, ``read`` and ``leave`` for a room the socket has not joined are
        ``not_in_room``, also when the user is a member through another socket."""
        other = self.chat.connect("alice")
        self.chat.join(other)
        for payload in NOT_JOINED:
            self.assertEqual([f["code"] for f in self.answers(payload)], ["not_in_room"], payload)
        self.assertEqual(other.of_type("message") + other.of_type("typing") + other.of_type("read"), [])
        self.assertStillUsable()

    def test_refused_message_carries_its_client_id_as_ref(self):
        """A refused ``message`` names its ``client_id`` as ``ref`` (a bad room, empty or too long text,
        not joined); other refused frames have no ``ref``."""
        cases = [
            ({"room": "bad room!", "text": "x"}, "invalid_frame"),
            ({"room": "lobby", "text": ""}, "invalid_frame"),
            ({"room": "lobby", "text": "x" * 4001}, "too_large"),
            ({"room": "lobby", "text": "x"}, "not_in_room"),
        ]
        for n, (fields, code) in enumerate(cases):
            self.chat.send(self.alice, type="message", client_id=f"c{n}", **fields)
            [error] = self.alice.take()
            self.assertEqual((error["code"], error["ref"]), (code, f"c{n}"), fields)
        [error] = self.answers(b'{"type": "typing", "room": "lobby", "typing": true}')
        self.assertNotIn("ref", error)

    def test_refused_frames_change_nothing(self):
        """A refused frame has no effect: a ``join`` of a malformed room joins nothing and makes no member."""
        self.answers(b'{"type": "join", "room": "bad room!"}')
        self.answers(b'{"type": "join", "room": "lobby", "since": "yesterday"}')
        self.assertEqual(list(self.registry.subscribers("lobby")), [])
        self.assertFalse(self.registry.is_member(self.alice.user_id, "lobby"))
