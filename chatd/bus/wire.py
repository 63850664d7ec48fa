"""Events as they travel on the bus: compact JSON, one kind of event per ``k``.

Every event names the process that sent it (``n``), so a process ignores its
own. Messages carry what a room's state and its sockets need (a ``Message``
without its id, which is derived); other events carry their fields under short
keys. Decoding never trusts the payload beyond its shape: a malformed event
is dropped by the caller.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from chatd.storage.records import Message

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def encode(node: str, kind: str, **fields) -> bytes:
    return _dumps({"n": node, "k": kind, **fields}).encode("utf-8")


def decode(payload: bytes) -> dict:
    event = json.loads(payload)
    if not isinstance(event, dict) or not isinstance(event.get("k"), str) or not isinstance(event.get("n"), str):
        raise ValueError("not an event")
    return event


def message_out(message: Message) -> dict:
    out = {"s": message.seq, "u": message.user_id, "a": message.user, "t": message.ts.timestamp()}
    if message.text is not None:
        out["x"] = message.text
    if message.client_id is not None:
        out["c"] = message.client_id
    if message.file is not None:
        out["f"] = message.file
    return out


def message_in(room: str, fields: dict) -> Message:
    return Message(
        room=room,
        seq=int(fields["s"]),
        user_id=str(fields["u"]),
        user=str(fields["a"]),
        ts=datetime.fromtimestamp(float(fields["t"]), timezone.utc),
        text=fields.get("x"),
        client_id=fields.get("c"),
        file=fields.get("f"),
    )


def moment_out(moment: datetime) -> float:
    return moment.timestamp()


def moment_in(value) -> datetime:
    return datetime.fromtimestamp(float(value), timezone.utc)
