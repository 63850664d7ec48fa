"""Who owns a room when its owner goes (SPEC.md, Details: Rooms and roles).

An owner who leaves (or is deleted from it by an admin) hands the room to the
moderator, or else the member, who joined earliest; the last member leaving
leaves the room without an owner, and the next one to join a public or private
room that has none becomes its owner (docs/BEHAVIOUR.md, Rooms). Each change is
one conditional write on the current owner, so two processes handing over at
once cannot both succeed.
"""

from __future__ import annotations

MAX_MEMBERS_READ = 100_000


def successor(memberships, leaving: str):
    """The membership that takes over from ``leaving``: moderators first, then by joining time."""
    others = [m for m in memberships if m.user_id != leaving]
    return min(others, key=lambda m: (m.role != "moderator", m.joined_at, m.user_id), default=None)


class Ownership:
    """Hands rooms over; ``events`` tells the room of its new owner (a ``member`` ``role`` event)."""

    def __init__(self, store, events) -> None:
        self._store = store
        self._events = events

    async def departed(self, room: str, user_id: str) -> None:
        """``user_id`` is no longer a member: if they owned the room, its next owner takes it."""
        head = (await self._store.room_heads([room])).get(room)
        if head is None or head.owner_id != user_id or head.kind == "direct":
            return
        heir = successor(await self._store.room_memberships(room, MAX_MEMBERS_READ), user_id)
        if await self._store.hand_room(room, user_id, heir.user_id if heir else None) and heir is not None:
            user = await self._store.get_user(heir.user_id)
            if user is not None:
                self._events.member_changed(room, user.username, "role", "owner")

    async def claim(self, room: str, user_id: str, username: str) -> bool:
        """A member of a room without an owner takes it (if nobody took it meanwhile)."""
        if await self._store.hand_room(room, None, user_id):
            self._events.member_changed(room, username, "role", "owner")
            return True
        return False
