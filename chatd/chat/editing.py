"""Editing and deleting stored messages (SPEC.md: PATCH/DELETE /api/rooms/{room}/messages/{seq}).

The author edits their text (an admin may delete, not edit); the author, the
room's owner and moderators, or an admin delete (chatd.rooms.access). In a
private or direct room, whoever may not read it gets 404, as for its history. A deleted message stays as a tombstone, so ``seq`` remains
gap-free, and a deleted file message takes its file with it. Each change is
written to the store, then to the room's cached history, then told to the
room as an ``edited`` or ``deleted`` event.
"""

from __future__ import annotations

from chatd import errors
from chatd.accounts.auth import Principal
from chatd.chat import frames
from chatd.chat.roomstate import RoomBook
from chatd.rooms.access import MODERATE, READ, SEE, allows
from chatd.storage.records import Message
from chatd.times import utc_from


class MessageEditor:
    """Edits and deletions, for the REST routes; ``events`` tells the room (chatd.chat.events)."""

    def __init__(self, store, rooms: RoomBook, events, clock, access, files=None) -> None:
        self._store = store
        self._access = access  # chatd.rooms.access.RoomAccess
        self._rooms = rooms
        self._events = events
        self._clock = clock
        self._files = files  # chatd.files.uploads.Files, to remove a deleted message's file

    async def edit(self, principal: Principal, room: str, seq: int, text: str) -> bytes:
        """The edited message's JSON."""
        await self._access.require(principal.user, room, READ)
        message = await self._message(room, seq)
        if message.user_id != principal.user.id:
            raise errors.forbidden("Only the author may edit a message.")
        if message.file is not None:
            raise errors.invalid("File messages cannot be edited.")
        edited_at = utc_from(self._clock.seconds())
        edited = await self._store.update_message(room, seq, {"text": text, "edited_at": edited_at})
        if edited is None or edited.deleted:
            raise errors.not_found("No such message.")  # deleted meanwhile
        self._cached(edited)
        self._events.message_edited(room, seq, edited.text, edited_at)
        return frames.message_body(edited)

    async def delete(self, principal: Principal, room: str, seq: int) -> None:
        standing = await self._access.standing(principal.user.id, principal.is_admin, room)
        if not allows(standing, READ) and not allows(standing, MODERATE):
            raise errors.not_found("No such message.")
        message = await self._message(room, seq)
        author = message.user_id == principal.user.id and allows(standing, READ)
        if not author and not allows(standing, MODERATE):
            if not allows(standing, SEE):
                raise errors.not_found("No such message.")
            raise errors.forbidden("Only the author, the room's owner and moderators, or an admin may delete a message.")
        tombstone = await self._store.update_message(
            # client_id stays (unseen in a tombstone): a resend of it is still recognised, not stored again.
            room, seq, {"deleted": True, "text": None, "file": None, "edited_at": None, "reactions": None,
                        "reactors": None})
        if tombstone is None:
            raise errors.not_found("No such message.")
        self._cached(tombstone)
        self._events.message_deleted(room, seq)
        if message.file is not None and self._files is not None:
            await self._files.remove(message.file["id"])

    async def _message(self, room: str, seq: int) -> Message:
        found = await self._store.get_messages(room, [seq])
        if not found or found[0].deleted:
            raise errors.not_found("No such message.")
        return found[0]

    def _cached(self, message: Message) -> None:
        state = self._rooms.peek(message.room)
        if state is not None:
            state.replace(message)

