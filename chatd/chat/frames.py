"""WebSocket frames (SPEC.md, WebSocket): client frames parsed into typed values, server frames encoded.

Parsing refuses with :class:`FrameError` carrying SPEC.md's socket error code.
Unknown extra fields in a client frame are ignored, so newer clients keep
working. Server frames are built as JSON bytes once and shared by every
receiver.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from chatd.storage.records import Message
from chatd.times import iso8601

# SPEC.md's 1-64 of [A-Za-z0-9_.-], but not "." or "..": in a URL path those mean "here" and "up".
ROOM = re.compile(r"(?!\.\.?$)[A-Za-z0-9_.-]{1,64}")
MAX_TEXT = 4000
MAX_CLIENT_ID = 128
HISTORY_LIMIT = 50
SINCE_LIMIT = 1000

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class FrameError(Exception):
    """A refused frame: ``code`` is one of SPEC.md's socket error codes."""

    def __init__(self, code: str, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref


@dataclass(frozen=True)
class Join:
    room: str
    since: int | None


@dataclass(frozen=True)
class Leave:
    room: str


@dataclass(frozen=True)
class Send:
    room: str
    text: str
    client_id: str | None
    reply_to: int | None = None


@dataclass(frozen=True)
class Reply(Send):
    """A ``message`` frame with ``reply_to``: its own type, for it waits for its root to be looked up."""


@dataclass(frozen=True)
class React:
    room: str
    seq: int
    emoji: str
    on: bool


@dataclass(frozen=True)
class Typing:
    room: str
    typing: bool


@dataclass(frozen=True)
class Read:
    room: str
    seq: int


@dataclass(frozen=True)
class Refresh:
    token: str


@dataclass(frozen=True)
class Ping:
    pass


def _room(frame: dict, ref: str | None = None) -> str:
    room = frame.get("room")
    if not isinstance(room, str) or not ROOM.fullmatch(room):
        raise FrameError("invalid_frame", "room must be 1-64 of A-Z a-z 0-9 _ . -", ref)
    return room


def _well_formed(value: str, name: str, ref: str | None = None) -> str:
    """JSON may carry lone surrogates (half an emoji, cut by a client): not text we can store or send."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise FrameError("invalid_frame", f"{name} is not valid Unicode", ref) from None
    return value


def _count(frame: dict, name: str, required: bool) -> int | None:
    value = frame.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FrameError("invalid_frame", f"{name} must be a whole number, 0 or more")
    return value


def _send(frame: dict) -> Send:
    client_id = frame.get("client_id")
    if client_id is not None and (not isinstance(client_id, str) or not 1 <= len(client_id) <= MAX_CLIENT_ID):
        raise FrameError("invalid_frame", f"client_id must be a string of 1-{MAX_CLIENT_ID} characters")
    if client_id is not None:
        _well_formed(client_id, "client_id")
    room = _room(frame, client_id)
    text = frame.get("text")
    if not isinstance(text, str) or not text:
        raise FrameError("invalid_frame", "text must be a non-empty string", client_id)
    if len(text) > MAX_TEXT:
        raise FrameError("too_large", f"text is longer than {MAX_TEXT} characters", client_id)
    reply_to = frame.get("reply_to")
    if reply_to is not None and (not isinstance(reply_to, int) or isinstance(reply_to, bool) or reply_to < 1):
        raise FrameError("invalid_frame", "reply_to must be a message's seq", client_id)
    kind = Send if reply_to is None else Reply
    return kind(room, _well_formed(text, "text", client_id), client_id, reply_to)


MAX_EMOJI = 32
_WHITESPACE = re.compile(r"\s")


def emoji_error(emoji) -> str | None:
    """Why ``emoji`` is not one (SPEC.md, Details: Reactions: 1-32 characters, no whitespace), or None."""
    if not isinstance(emoji, str) or not 1 <= len(emoji) <= MAX_EMOJI or _WHITESPACE.search(emoji):
        return f"emoji must be 1-{MAX_EMOJI} characters without whitespace"
    try:
        emoji.encode("utf-8")
    except UnicodeEncodeError:
        return "emoji is not valid Unicode"
    return None


def _react(frame: dict) -> React:
    room = _room(frame)
    seq = _count(frame, "seq", required=True)
    why = emoji_error(frame.get("emoji"))
    if why is not None:
        raise FrameError("invalid_frame", why)
    on = frame.get("on")
    if not isinstance(on, bool):
        raise FrameError("invalid_frame", "on must be true or false")
    return React(room, seq, frame["emoji"], on)


def _typing(frame: dict) -> Typing:
    typing = frame.get("typing")
    if not isinstance(typing, bool):
        raise FrameError("invalid_frame", "typing must be true or false")
    return Typing(_room(frame), typing)


def _refresh(frame: dict) -> Refresh:
    token = frame.get("token")
    if not isinstance(token, str) or not token:
        raise FrameError("invalid_frame", "token must be a string")
    return Refresh(_well_formed(token, "token"))


_PARSERS = {
    "join": lambda f: Join(_room(f), _count(f, "since", required=False)),
    "leave": lambda f: Leave(_room(f)),
    "message": _send,
    "react": _react,
    "typing": _typing,
    "read": lambda f: Read(_room(f), _count(f, "seq", required=True)),
    "refresh": _refresh,
    "ping": lambda f: Ping(),
}


def parse(payload: bytes, is_binary: bool):
    """One client frame as a typed value, or FrameError."""
    if is_binary:
        raise FrameError("invalid_frame", "frames must be JSON text, not binary")
    try:
        frame = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        raise FrameError("invalid_json", "the frame is not valid JSON") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise FrameError("invalid_frame", "a frame is a JSON object with a string type")
    parser = _PARSERS.get(frame["type"])
    if parser is None:
        raise FrameError("unknown_type", f"unknown frame type {frame['type'][:40]!r}")
    return parser(frame)


# -- server frames -----------------------------------------------------------


def encode(frame: dict) -> bytes:
    return _dumps(frame).encode("utf-8")


def message_body(message: Message) -> bytes:
    """SPEC.md's Message as JSON; the unit of history and of the ``message`` frame.

    Beyond SPEC.md, every body (tombstones too) carries ``user_id``: a username
    can change hands after a rename, the author's id cannot, so the page decides
    "own message" and whom a ban is for by id (docs/BEHAVIOUR.md).
    """
    body: dict = {
        "room": message.room,
        "seq": message.seq,
        "id": message.id,
        "user": message.user,
        "user_id": message.user_id,
        "ts": iso8601(message.ts),
    }
    if message.deleted:
        body["deleted"] = True
        if message.thread is not None:  # a deleted root keeps its thread (SPEC.md, Details: Threads)
            body["thread"] = thread_summary(message.thread)
        return encode(body)
    body["text"] = message.text if message.text is not None else ""
    if message.client_id is not None:
        body["client_id"] = message.client_id
    if message.file is not None:
        body["file"] = message.file
    if message.edited_at is not None:
        body["edited_at"] = iso8601(message.edited_at)
    if message.reply_to is not None:
        body["reply_to"] = message.reply_to
    if message.thread is not None:
        body["thread"] = thread_summary(message.thread)
    if message.reactions:
        body["reactions"] = message.reaction_groups()
    if message.mentions:
        body["mentions"] = list(message.mentions)
    return encode(body)


def thread_summary(thread: dict) -> dict:
    """SPEC.md's ``thread`` of a root message: replies, last_reply_at, last_reply_seq."""
    return {"replies": thread["replies"], "last_reply_at": iso8601(thread["last_reply_at"]),
            "last_reply_seq": thread["last_reply_seq"]}


def thread_frame(room: str, root: int, thread: dict) -> bytes:
    """The ``thread`` frame: the root's summary after a reply was stored."""
    return encode({"type": "thread", "room": room, "root": root, **thread_summary(thread)})


def reaction_frame(room: str, seq: int, emoji: str, user: str, on: bool) -> bytes:
    return encode({"type": "reaction", "room": room, "seq": seq, "emoji": emoji, "user": user, "on": on})


def message_frame(body: bytes) -> bytes:
    """The ``message`` frame for a stored message's body (no re-encoding)."""
    return b'{"type":"message",' + body[1:]


def joined_frame(room: str, members: list[str], history: list[bytes], truncated: bool) -> bytes:
    head = {"type": "joined", "room": room, "members": members}
    if truncated:
        head["truncated"] = True
    return encode(head)[:-1] + b',"history":[' + b",".join(history) + b"]}"


def ack_frame(message: Message, client_id: str | None) -> bytes:
    # One per message sent, so built directly: room and id are [A-Za-z0-9_.-] and a
    # number (checked by parse), the time is ISO 8601; only client_id needs escaping.
    client = "null" if client_id is None else _dumps(client_id)
    return (f'{{"type":"ack","client_id":{client},"room":"{message.room}","seq":{message.seq},'
            f'"id":"{message.id}","ts":"{iso8601(message.ts)}"}}').encode("utf-8")


def error_frame(code: str, message: str, ref: str | None = None) -> bytes:
    frame = {"type": "error", "code": code, "message": message}
    if ref is not None:
        frame["ref"] = ref
    return encode(frame)


PONG = encode({"type": "pong"})
