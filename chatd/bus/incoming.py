"""What the other chatd processes announce on the bus, applied here as if it had happened here.

Their messages go through the sequencer (in seq order, each once, gaps filled
from the store); edits, deletions, threads and reactions also update the room's
cached messages; everything else goes to the local events, and presence's own
kinds to the cluster's presence. A malformed publish, or an event that fails,
is logged and dropped: the next ones are still applied.
"""

from __future__ import annotations

from twisted.logger import Logger

from chatd.bus import wire


class Incoming:
    """Applies the others' events (see the module docstring); ``received`` is the bus's on_message."""

    _log = Logger()

    def __init__(self, node: str, local, registry, rooms, sequencer, presence, forget, catch_up) -> None:
        self._own = wire.sent_by(node)
        self._local = local
        self._registry = registry
        self._rooms = rooms
        self._sequencer = sequencer
        self._presence = presence
        self._forget = forget  # a membership changed elsewhere: the cached user here is stale at once
        self._catch_up = catch_up  # read a room's messages from the store

    def received(self, channel: bytes, payload: bytes) -> None:
        if payload.startswith(self._own):
            return  # our own publish, back from Redis
        try:
            events = wire.decode_batch(payload)
        except Exception:
            self._log.failure("a malformed publish on the bus was dropped")
            return
        for event in events:
            try:
                self._apply(event)
            except Exception:
                self._log.failure("applying an event from the bus failed")

    def _apply(self, event: dict) -> None:
        kind, local = event["k"], self._local
        if kind == "m":
            room = event["r"]
            self._sequencer.received(room, [wire.message_in(room, fields) for fields in event["m"]])
        elif kind == "mn":
            local.mentioned(event["r"], int(event["s"]), event["u"], event["a"], event["x"], list(event["m"]))
        elif kind == "e":
            self._update(event["r"], event["s"], text=event["x"], edited_at=wire.moment_in(event["t"]))
            local.message_edited(event["r"], event["s"], event["x"], wire.moment_in(event["t"]))
        elif kind == "d":
            self._update(event["r"], event["s"], deleted=True, text=None, file=None, edited_at=None)
            local.message_deleted(event["r"], event["s"])
        elif kind == "th":
            thread = {"replies": int(event["c"]), "last_reply_at": wire.moment_in(event["t"]),
                      "last_reply_seq": int(event["l"])}
            self._update(event["r"], event["s"], thread=thread)
            local.thread_updated(event["r"], event["s"], thread)
        elif kind == "rx":
            self._update(event["r"], event["s"], reactions=tuple(str(key) for key in event["rs"]),
                         reactors=dict(event.get("rn") or {}) or None)
            local.reaction(event["r"], event["s"], event["e"], event["a"], bool(event["o"]))
        elif kind == "ty":
            local.typing(event["r"], event["u"], event["a"], bool(event["y"]))
        elif kind == "rd":
            local.read(event["r"], event["u"], event["a"], event["s"])
        elif kind == "p":
            if event["e"] == "join":
                self._registry.became_member(event["u"], event["r"])
                self._presence.member_joined(event["u"], event["r"])
            local.presence(event["r"], event["u"], event["a"], event["e"])
        elif kind == "ml":
            self._forget(event["u"])
            local.member_left(event["r"], event["u"], event["a"], event.get("why"))
            self._presence.member_left(event["u"], event["r"])
        elif kind == "iv":
            self._forget(event["u"])
            local.invited(event["u"], event["r"], event["v"], event["b"])
            self._presence.member_joined(event["u"], event["r"])
        elif kind == "mb":
            local.member_changed(event["r"], event["a"], event["e"], event.get("o"))
        elif kind == "rc":
            local.room_changed(event["r"], event["v"])
        elif kind in ("on", "off", "hi"):
            self._presence.received(event)
        elif kind == "tr":
            local.token_revoked(event["j"])
        elif kind == "pc":
            local.password_changed(event["u"], event.get("b"))
        elif kind == "ub":
            local.user_banned(event["u"])
        elif kind == "ud":
            local.user_deleted(event["u"])
        elif kind == "ur":
            local.user_renamed(event["u"], event["a"])
            self._presence.renamed(event["u"], event["a"])
        elif kind == "cu":
            for room in event["rooms"]:
                self._catch_up(room)

    def _update(self, room: str, seq: int, **changes) -> None:
        state = self._rooms.peek(room)
        if state is not None:
            state.update(seq, **changes)
