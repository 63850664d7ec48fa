"""Unit tests for chatd.chat.frames: client frames parsed or refused with SPEC.md's codes, server frames encoded."""

import json
from datetime import datetime, timezone

from twisted.trial.unittest import SynchronousTestCase

from chatd.chat import frames
from chatd.chat.frames import (
    FrameError,
    Join,
    Leave,
    Ping,
    Read,
    Refresh,
    Send,
    Typing,
    parse,
)
from chatd.storage.records import Message

TS = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)


def payload(frame) -> bytes:
    return json.dumps(frame).encode("utf-8")


class ParseTests(SynchronousTestCase):
    """Every client frame type of SPEC.md parses into its typed value."""

    def test_join(self):
        """``join`` gives the room, and ``since`` when present."""
        self.assertEqual(parse(payload({"type": "join", "room": "lobby"}), False), Join("lobby", None))
        self.assertEqual(parse(payload({"type": "join", "room": "lobby", "since": 17}), False), Join("lobby", 17))
        self.assertEqual(parse(payload({"type": "join", "room": "lobby", "since": 0}), False), Join("lobby", 0))
        self.assertEqual(parse(payload({"type": "join", "room": "lobby", "since": None}), False), Join("lobby", None))

    def test_leave(self):
        """``leave`` gives the room."""
        self.assertEqual(parse(payload({"type": "leave", "room": "dev.team-1"}), False), Leave("dev.team-1"))

    def test_message(self):
        """``message`` gives room, text and client_id (None when absent or null)."""
        self.assertEqual(parse(payload({"type": "message", "room": "r", "text": "hi", "client_id": "abc"}), False),
                         Send("r", "hi", "abc"))
        self.assertEqual(parse(payload({"type": "message", "room": "r", "text": "hi"}), False), Send("r", "hi", None))
        self.assertEqual(parse(payload({"type": "message", "room": "r", "text": "hi", "client_id": None}), False),
                         Send("r", "hi", None))

    def test_typing(self):
        """``typing`` gives the room and the boolean."""
        self.assertEqual(parse(payload({"type": "typing", "room": "r", "typing": True}), False), Typing("r", True))
        self.assertEqual(parse(payload({"type": "typing", "room": "r", "typing": False}), False), Typing("r", False))

    def test_read(self):
        """``read`` gives the room and the seq."""
        self.assertEqual(parse(payload({"type": "read", "room": "r", "seq": 42}), False), Read("r", 42))
        self.assertEqual(parse(payload({"type": "read", "room": "r", "seq": 0}), False), Read("r", 0))

    def test_refresh(self):
        """``refresh`` gives the token."""
        self.assertEqual(parse(payload({"type": "refresh", "token": "a.b.c"}), False), Refresh("a.b.c"))

    def test_ping(self):
        """``ping`` parses to Ping."""
        self.assertEqual(parse(b'{"type":"ping"}', False), Ping())

    def test_unknown_fields_ignored(self):
        """Extra fields are ignored so newer clients keep working."""
        self.assertEqual(parse(payload({"type": "leave", "room": "r", "extra": {"x": 1}}), False), Leave("r"))

    def test_room_names(self):
        """Room names of 1 and 64 of the allowed characters are accepted."""
        for room in ("a", "A-z_0.9", "x" * 64):
            with self.subTest(room=room):
                self.assertEqual(parse(payload({"type": "leave", "room": room}), False), Leave(room))

    def test_dot_rooms_are_refused(self):
        """Rooms named ``.`` and ``..`` are refused (a browser's URL handling turns them into other paths);
        names that merely contain dots are fine."""
        for room in (".", ".."):
            with self.subTest(room=room):
                error = self.assertRaises(FrameError, parse, payload({"type": "join", "room": room}), False)
                self.assertEqual(error.code, "invalid_frame")
        for room in ("...", ".a", "a.", "a..b"):
            with self.subTest(accepted=room):
                self.assertEqual(parse(payload({"type": "join", "room": room}), False), Join(room, None))

    def test_text_limit_counts_code_points(self):
        """4000 characters are accepted even when each takes 4 bytes (emoji), in either JSON escaping."""
        emoji = "\U0001F600" * 4000
        for raw in (payload({"type": "message", "room": "r", "text": emoji}),
                    json.dumps({"type": "message", "room": "r", "text": emoji}, ensure_ascii=False).encode()):
            with self.subTest(raw=raw[:40]):
                self.assertEqual(parse(raw, False).text, emoji)
        self.assertEqual(parse(payload({"type": "message", "room": "r", "text": "x" * 4000}), False).text, "x" * 4000)

    def test_client_id_lengths(self):
        """client_id of 1 to 128 characters is accepted."""
        for client_id in ("a", "c" * 128):
            with self.subTest(length=len(client_id)):
                frame = parse(payload({"type": "message", "room": "r", "text": "t", "client_id": client_id}), False)
                self.assertEqual(frame.client_id, client_id)


class ParseErrorTests(SynchronousTestCase):
    """Refused frames carry SPEC.md's socket error codes."""

    def refused(self, raw, code, is_binary=False):
        if not isinstance(raw, bytes):
            raw = payload(raw)
        with self.assertRaises(FrameError) as caught:
            parse(raw, is_binary)
        self.assertEqual(caught.exception.code, code, caught.exception.message)
        self.assertTrue(caught.exception.message)
        return caught.exception

    def test_invalid_json(self):
        """Text that is not JSON, or not UTF-8, is ``invalid_json``."""
        for raw in (b"", b"{", b"not json", b'{"type": "ping",}', b"\xff\xfe{", b'{"type":"ping"} x'):
            with self.subTest(raw=raw):
                self.refused(raw, "invalid_json")

    def test_binary(self):
        """A binary frame is ``invalid_frame``, even if it holds valid JSON."""
        self.refused(b'{"type":"ping"}', "invalid_frame", is_binary=True)

    def test_not_an_object(self):
        """Valid JSON that is not an object is ``invalid_frame``."""
        for raw in (b"[]", b'[{"type":"ping"}]', b'"ping"', b"1", b"null", b"true"):
            with self.subTest(raw=raw):
                self.refused(raw, "invalid_frame")

    def test_missing_or_non_string_type(self):
        """An object without a string ``type`` is ``invalid_frame``."""
        for frame in ({}, {"room": "r"}, {"type": None}, {"type": 1}, {"type": ["ping"]}, {"type": {"a": 1}}):
            with self.subTest(frame=frame):
                self.refused(frame, "invalid_frame")

    def test_unknown_type(self):
        """A string ``type`` that is not one of SPEC.md's is ``unknown_type``."""
        for name in ("pong", "PING", "", "hello", "x" * 1000):
            with self.subTest(name=name[:10]):
                error = self.refused({"type": name}, "unknown_type")
                self.assertLess(len(error.message), 100)

    def test_bad_room(self):
        """A room that is missing, not a string, empty, too long or with other characters is ``invalid_frame``."""
        rooms = [None, 1, ["r"], "", "x" * 65, "a b", "a/b", "räum", "room\n", "$where"]
        for kind in ("join", "leave", "message", "typing", "read"):
            for room in rooms:
                frame = {"type": kind, "text": "t", "typing": True, "seq": 1}
                if room is not None:
                    frame["room"] = room
                with self.subTest(kind=kind, room=room):
                    self.refused(frame, "invalid_frame")

    def test_bad_since(self):
        """``since`` must be a whole number from 0: booleans, negatives, floats and strings are ``invalid_frame``."""
        for since in (True, False, -1, 1.5, 2.0, "3", [1], {"$gt": 0}):
            with self.subTest(since=since):
                self.refused({"type": "join", "room": "r", "since": since}, "invalid_frame")

    def test_bad_seq(self):
        """``seq`` is required and must be a whole number from 0."""
        for seq in (None, True, False, -5, 1.5, "7"):
            with self.subTest(seq=seq):
                frame = {"type": "read", "room": "r"}
                if seq is not None:
                    frame["seq"] = seq
                self.refused(frame, "invalid_frame")
        self.refused({"type": "read", "room": "r", "seq": None}, "invalid_frame")

    def test_bad_text(self):
        """Missing, non-string or empty text is ``invalid_frame``."""
        for text in (None, "", 5, ["hi"], {"t": 1}, True):
            with self.subTest(text=text):
                frame = {"type": "message", "room": "r"}
                if text is not None:
                    frame["text"] = text
                self.refused(frame, "invalid_frame")

    def test_text_too_large(self):
        """4001 code points (ASCII or emoji) is ``too_large``."""
        for text in ("x" * 4001, "\U0001F600" * 4001):
            with self.subTest(first=text[0]):
                self.refused({"type": "message", "room": "r", "text": text}, "too_large")

    def test_bad_client_id(self):
        """A client_id that is empty, longer than 128 or not a string is ``invalid_frame``."""
        for client_id in ("", "c" * 129, 5, ["c"], {"c": 1}, True):
            with self.subTest(client_id=client_id):
                error = self.refused({"type": "message", "room": "r", "text": "t", "client_id": client_id},
                                     "invalid_frame")
                self.assertIsNone(error.ref)

    def test_ref_carries_client_id(self):
        """Refusing a message's text names its client_id as ``ref``, so the sender can tell which."""
        error = self.refused({"type": "message", "room": "r", "text": "", "client_id": "c-9"}, "invalid_frame")
        self.assertEqual(error.ref, "c-9")
        error = self.refused({"type": "message", "room": "r", "text": "x" * 4001, "client_id": "c-10"}, "too_large")
        self.assertEqual(error.ref, "c-10")
        error = self.refused({"type": "message", "room": "r", "text": "x" * 4001}, "too_large")
        self.assertIsNone(error.ref)

    def test_bad_typing(self):
        """``typing`` must be a boolean."""
        for value in (None, 1, 0, "true"):
            with self.subTest(value=value):
                frame = {"type": "typing", "room": "r"}
                if value is not None:
                    frame["typing"] = value
                self.refused(frame, "invalid_frame")

    def test_bad_token(self):
        """``refresh`` needs a non-empty string token."""
        for token in (None, "", 5, {"$ne": ""}):
            with self.subTest(token=token):
                frame = {"type": "refresh"}
                if token is not None:
                    frame["token"] = token
                self.refused(frame, "invalid_frame")


def stored(**changes):
    fields = dict(room="lobby", seq=7, user_id="u1", user="alice", ts=TS, text="hello")
    fields.update(changes)
    return Message(**fields)


class MessageBodyTests(SynchronousTestCase):
    """SPEC.md's Message shape, used in history and in ``message`` frames."""

    def test_normal(self):
        """A plain message has room, seq, id, user, the author's user_id, text and an ISO 8601 UTC ts, nothing else."""
        body = json.loads(frames.message_body(stored()))
        self.assertEqual(body, {"room": "lobby", "seq": 7, "id": "lobby:7", "user": "alice", "user_id": "u1",
                                "ts": "2024-05-01T12:00:00.123Z", "text": "hello"})

    def test_client_id(self):
        """A message sent with a client_id shows it."""
        body = json.loads(frames.message_body(stored(client_id="c1")))
        self.assertEqual(body["client_id"], "c1")

    def test_edited(self):
        """An edited message carries the new text and ``edited_at``."""
        edited_at = datetime(2024, 5, 1, 13, 0, tzinfo=timezone.utc)
        body = json.loads(frames.message_body(stored(text="fixed", edited_at=edited_at)))
        self.assertEqual(body["text"], "fixed")
        self.assertEqual(body["edited_at"], "2024-05-01T13:00:00.000Z")
        self.assertNotIn("deleted", body)

    def test_deleted_is_tombstone(self):
        """A deleted message is exactly room, seq, id, user, user_id, ts and ``deleted: true`` (no text)."""
        edited_at = datetime(2024, 5, 1, 13, 0, tzinfo=timezone.utc)
        body = json.loads(frames.message_body(stored(deleted=True, client_id="c1", edited_at=edited_at,
                                                     file={"id": "f"})))
        self.assertEqual(body, {"room": "lobby", "seq": 7, "id": "lobby:7", "user": "alice", "user_id": "u1",
                                "ts": "2024-05-01T12:00:00.123Z", "deleted": True})

    def test_file(self):
        """A file message carries its file object and a string text."""
        file = {"id": "f1", "name": "a.png", "size": 3, "content_type": "image/png", "url": "/api/files/f1"}
        body = json.loads(frames.message_body(stored(text=None, file=file)))
        self.assertEqual(body["file"], file)
        self.assertEqual(body["text"], "")

    def test_non_ascii_is_utf8(self):
        """Non-ASCII text is sent as UTF-8 and decodes back to the same text."""
        raw = frames.message_body(stored(text="héllo \U0001F600"))
        self.assertIn("héllo \U0001F600".encode("utf-8"), raw)
        self.assertEqual(json.loads(raw)["text"], "héllo \U0001F600")

    def test_unedited_has_no_edited_at(self):
        """``edited_at`` is absent on unedited messages."""
        self.assertNotIn("edited_at", json.loads(frames.message_body(stored())))


class ServerFrameTests(SynchronousTestCase):
    """Frames built once as bytes and shared by every receiver."""

    def test_message_frame(self):
        """The ``message`` frame starts with its type and is the body plus ``type``."""
        body = frames.message_body(stored(client_id="c1"))
        frame = frames.message_frame(body)
        self.assertTrue(frame.startswith(b'{"type":"message",'))
        self.assertEqual(json.loads(frame), {"type": "message", **json.loads(body)})

    def test_joined_frame(self):
        """``joined`` holds room, members and the history bodies in order; no ``truncated`` unless true."""
        bodies = [frames.message_body(stored(seq=seq, text=f"m{seq}")) for seq in (3, 4, 5)]
        frame = json.loads(frames.joined_frame("lobby", ["alice", "bob"], bodies, False))
        self.assertEqual(frame["type"], "joined")
        self.assertEqual(frame["room"], "lobby")
        self.assertEqual(frame["members"], ["alice", "bob"])
        self.assertEqual(frame["history"], [json.loads(b) for b in bodies])
        self.assertNotIn("truncated", frame)

    def test_joined_frame_truncated(self):
        """``joined.truncated`` is true when the history was cut."""
        frame = json.loads(frames.joined_frame("lobby", [], [frames.message_body(stored())], True))
        self.assertIs(frame["truncated"], True)
        self.assertEqual(len(frame["history"]), 1)

    def test_joined_frame_empty_history(self):
        """A room without messages answers ``history: []``."""
        frame = json.loads(frames.joined_frame("lobby", ["alice"], [], False))
        self.assertEqual(frame["history"], [])
        self.assertEqual(frame["members"], ["alice"])

    def test_ack_frame(self):
        """The ack names client_id, room, seq, id and ts."""
        frame = json.loads(frames.ack_frame(stored(client_id="c1"), "c1"))
        self.assertEqual(frame, {"type": "ack", "client_id": "c1", "room": "lobby", "seq": 7, "id": "lobby:7",
                                 "ts": "2024-05-01T12:00:00.123Z"})

    def test_ack_frame_without_client_id(self):
        """``ack.client_id`` is null when none was sent."""
        frame = json.loads(frames.ack_frame(stored(), None))
        self.assertIn("client_id", frame)
        self.assertIsNone(frame["client_id"])

    def test_error_frame(self):
        """Error frames carry code and message, and ``ref`` only when given."""
        self.assertEqual(json.loads(frames.error_frame("not_in_room", "join r first")),
                         {"type": "error", "code": "not_in_room", "message": "join r first"})
        self.assertEqual(json.loads(frames.error_frame("too_large", "too long", "c1"))["ref"], "c1")

    def test_pong(self):
        """``ping`` is answered by exactly ``{"type": "pong"}``."""
        self.assertEqual(json.loads(frames.PONG), {"type": "pong"})


class MalformedTextTests(SynchronousTestCase):
    """Regressions: frames that are valid JSON but not usable text, or absurdly nested."""

    def test_lone_surrogate_in_text_is_invalid_frame(self):
        """Half an emoji (a lone surrogate) in text is refused with invalid_frame carrying the client_id."""
        with self.assertRaises(frames.FrameError) as refused:
            frames.parse(b'{"type":"message","room":"a","text":"\\ud83d","client_id":"c9"}', False)
        self.assertEqual((refused.exception.code, refused.exception.ref), ("invalid_frame", "c9"))

    def test_lone_surrogate_in_token_is_invalid_frame(self):
        """A refresh token with a lone surrogate is invalid_frame, not a server fault."""
        with self.assertRaises(frames.FrameError) as refused:
            frames.parse(b'{"type":"refresh","token":"ab\\udc00"}', False)
        self.assertEqual(refused.exception.code, "invalid_frame")

    def test_deep_nesting_is_invalid_json(self):
        """Deeply nested JSON under the size limit is answered with invalid_json."""
        with self.assertRaises(frames.FrameError) as refused:
            frames.parse(b"[" * 5000, False)
        self.assertEqual(refused.exception.code, "invalid_json")

    def test_bad_room_in_message_carries_ref(self):
        """A message frame with a bad room reports its client_id as ref."""
        with self.assertRaises(frames.FrameError) as refused:
            frames.parse(b'{"type":"message","room":"no room","text":"x","client_id":"c1"}', False)
        self.assertEqual(refused.exception.ref, "c1")
