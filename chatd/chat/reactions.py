"""Reactions (SPEC.md, Details: Reactions): the ``react`` frame and PUT/DELETE .../reactions/{emoji}.

Members of a room react to its messages: at most one of each emoji per user
and message, at most ``MAX_EMOJI_KINDS`` distinct emoji per message. The
store's conditional write decides whether anything changed (two processes
adding the same user's same emoji store it once) and keeps the limit (two
new emoji at once cannot pass it), and only a change is written
into the cached history and told to the room as a ``reaction`` frame (and on
the bus). A deleted message takes none (``not_found``); its tombstone has none.
"""

from __future__ import annotations

from chatd import errors
from chatd.chat import frames
from chatd.chat.connection import ChatSocket
from chatd.chat.roomstate import RoomBook
from chatd.chat.threads import find_message
from chatd.rooms.access import SEE, WRITE, Standing, allows
from chatd.storage.records import TooManyKinds

MAX_EMOJI_KINDS = 20


class Reactions:
    """Adding and removing reactions, from the socket (``react``) and from REST (``apply``)."""

    def __init__(self, store, rooms: RoomBook, events, access) -> None:
        self._store = store
        self._rooms = rooms
        self._events = events
        self._access = access  # chatd.rooms.access.RoomAccess

    async def react(self, sock: ChatSocket, frame: frames.React) -> None:
        """The ``react`` frame: membership is asked of the store (the socket need not have joined)."""
        standing = await self._access.current(sock.user_id, frame.room)
        if not allows(standing, WRITE):
            if not allows(standing, SEE):
                raise errors.not_found("No such message.")
            raise errors.forbidden("Only members of the room may react; join it first.")
        await self.apply(standing, sock.username, frame.room, frame.seq, frame.emoji, frame.on)

    async def apply(self, standing: Standing, username: str, room: str, seq: int, emoji: str, on: bool) -> None:
        """Add (``on``) or remove ``username``'s ``emoji`` on message ``seq``, for a member (``standing``)."""
        if not allows(standing, WRITE):
            raise errors.forbidden("Only members of the room may react.")
        message = await find_message(self._store, self._rooms, room, seq)
        if message is None or message.deleted:
            raise errors.not_found("No such message.")
        try:
            updated, changed = await self._store.react(room, seq, emoji, standing.user_id, username, on,
                                                       MAX_EMOJI_KINDS)
        except TooManyKinds:
            raise errors.too_large(f"A message holds at most {MAX_EMOJI_KINDS} different emoji.") from None
        if updated is None:
            raise errors.not_found("No such message.")  # deleted meanwhile
        if not changed:
            return
        state = self._rooms.peek(room)
        if state is not None:
            state.update(seq, reactions=updated.reactions, reactors=updated.reactors)
        self._events.reaction(room, seq, emoji, username, on, updated.reactions, updated.reactors)
