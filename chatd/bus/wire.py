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


def _checked(event) -> dict:
    if not isinstance(event, dict) or not isinstance(event.get("k"), str) or not isinstance(event.get("n"), str):
        raise ValueError("not an event")
    return event


# One publish carries every event of a turn: ``<node> [event,event,...]``. Redis's and txredisapi's cost is
# per published message, whatever its size, so many small rooms' messages cost one round trip, not one each;
# the sender's name in front lets each process skip its own publishes without parsing them. A batch
# stays under MAX_BATCH bytes so that no subscriber has megabytes to parse at once.
MAX_BATCH = 256 * 1024


def batches(node: str, payloads: list[bytes]) -> list[bytes]:
    """``payloads`` (encoded events, in order) as few publishes as fit MAX_BATCH (one event never split)."""
    head = node.encode("utf-8") + b" ["
    out, batch, size = [], [], 0
    for payload in payloads:
        if batch and size + len(payload) > MAX_BATCH:
            out.append(head + b",".join(batch) + b"]")
            batch, size = [], 0
        batch.append(payload)
        size += len(payload) + 1
    if batch:
        out.append(head + b",".join(batch) + b"]")
    return out


def sent_by(node: str) -> bytes:
    """What a batch from ``node`` starts with."""
    return node.encode("utf-8") + b" "


def decode_batch(payload: bytes) -> list[dict]:
    """The events of one publish, in order; a malformed publish raises (the caller drops it)."""
    _, _, body = payload.partition(b" ")
    events = json.loads(body)
    if not isinstance(events, list):
        raise ValueError("not a batch of events")
    return [_checked(event) for event in events]


def message_out(message: Message) -> dict:
    out = {"s": message.seq, "u": message.user_id, "a": message.user, "t": message.ts.timestamp()}
    if message.text is not None:
        out["x"] = message.text
    if message.client_id is not None:
        out["c"] = message.client_id
    if message.file is not None:
        out["f"] = message.file
    if message.reply_to is not None:
        out["rt"] = message.reply_to
    if message.mentions:
        out["mn"], out["mi"] = list(message.mentions), list(message.mention_ids)
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
        reply_to=fields.get("rt"),
        mentions=tuple(str(name) for name in fields.get("mn") or ()),
        mention_ids=tuple(str(uid) for uid in fields.get("mi") or ()),
    )


def moment_out(moment: datetime) -> float:
    return moment.timestamp()


def moment_in(value) -> datetime:
    return datetime.fromtimestamp(float(value), timezone.utc)
