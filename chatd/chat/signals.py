"""Typing indicators and read receipts (SPEC.md: ``typing`` and ``read``; Details: Unread).

Both go to the room's other members and may be dropped for a slow reader.
A receipt's seq is capped at the room's last seq; one that does not move the
user forward is neither stored nor relayed (see ``chatd.chat.receipts``).
Presence (online, offline, join, leave) is told by the sessions and the
membership as it happens.
"""

from __future__ import annotations

from chatd.chat import frames
from chatd.chat.connection import ChatSocket, require_joined


class Signals:
    """The ``typing`` and ``read`` frames."""

    def __init__(self, registry, rooms, receipts, events) -> None:
        self._registry = registry
        self._rooms = rooms
        self._receipts = receipts
        self._events = events

    def typing(self, sock: ChatSocket, frame: frames.Typing) -> None:
        require_joined(self._registry, sock, frame.room)
        self._events.typing(frame.room, sock.user_id, sock.username, frame.typing)

    async def read(self, sock: ChatSocket, frame: frames.Read) -> None:
        require_joined(self._registry, sock, frame.room)
        state = await self._rooms.get(frame.room)
        seq = min(frame.seq, state.last_seq)
        if self._receipts.mark(frame.room, sock.user_id, seq):  # stored within a second, with the next ones
            self._events.read(frame.room, sock.user_id, sock.username, seq)
