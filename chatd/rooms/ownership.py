"""Who owns a room when its owner goes (SPEC.md, Details: Rooms and roles: exactly one owner for a public
or private room).

An owner who leaves (or is removed by an admin, or deletes their account) hands
the room to the moderator, or else the member, who joined earliest; the last
member leaving leaves the room without an owner, and the next one to become a
member of a room that has none takes it (docs/BEHAVIOUR.md, Rooms and roles).

Several processes may hand over at once, and the chosen heir may leave at the
very moment they are chosen. Two rules keep the owner a member:

- every change of owner is one conditional write on the current owner
  (``hand_room``): of two hand-overs from one owner, one wins, and the loser
  stops (whoever changed the owner carries on);
- whoever makes the write then reads the new owner's membership: if they left
  meanwhile, it hands the room on from them (again conditionally) to the next
  candidate; if the room was left without an owner, it looks again for a
  member who joined meanwhile. A member who leaves reads the owner only after
  their membership is gone, and one who joins only after theirs exists, so a
  departure or arrival is always seen by one side or the other.
"""

from __future__ import annotations

from twisted.logger import Logger

MAX_MEMBERS_READ = 100_000
# Heirs tried in a row, each of whom left the moment they were chosen, before giving up (and logging).
MAX_HANDS = 20
LOST = object()  # the first conditional write found another owner: someone else changed it meanwhile


def successor(memberships, leaving: str | None):
    """The membership that takes over from ``leaving``: moderators first, then by joining time."""
    others = [m for m in memberships if m.user_id != leaving]
    return min(others, key=lambda m: (m.role != "moderator", m.joined_at, m.user_id), default=None)


class Ownership:
    """Hands rooms over; ``events`` tells the room of its new owner (a ``member`` ``role`` event)."""

    _log = Logger()

    def __init__(self, store, events) -> None:
        self._store = store
        self._events = events

    async def departed(self, room: str, user_id: str) -> None:
        """``user_id`` is no longer a member (their membership is gone from the store): if they owned the
        room, its next owner takes it."""
        head = (await self._store.room_heads([room])).get(room)
        if head is None or head.owner_id != user_id or head.kind == "direct":
            return
        owner = await self.hand(room, user_id, await self._next(room, user_id))
        await self.announce(room, owner)

    async def departed_all(self, user_id: str, rooms) -> None:
        """``user_id``'s memberships of ``rooms`` are gone (their account was deleted): every room of these
        they owned is handed over."""
        rooms = list(rooms)
        heads = await self._store.room_heads(rooms) if rooms else {}
        for room, head in sorted(heads.items()):
            if head.owner_id == user_id and head.kind != "direct":
                await self.announce(room, await self.hand(room, user_id, await self._next(room, user_id)))

    async def joined(self, room: str, user_id: str) -> None:
        """``user_id`` has just become a member (their membership is in the store): if the room has no owner,
        they take it (if nobody took it meanwhile)."""
        head = (await self._store.room_heads([room])).get(room)
        if head is not None and head.owner_id is None and head.kind != "direct":
            await self.announce(room, await self.hand(room, None, user_id))

    async def hand(self, room: str, owner_was: str | None, heir: str | None, fallback: str | None = None):
        """Make ``heir`` the owner if ``owner_was`` still is, then see that the owner is a member (see the
        module docstring); ``fallback`` is the first one tried should ``heir`` have left meanwhile. The
        owner it ends with (an id or None), or LOST if ``owner_was`` no longer owned the room. It tells
        nobody: the caller announces the owner it ends with."""
        for attempt in range(MAX_HANDS):
            if not await self._store.hand_room(room, owner_was, heir):
                return LOST if attempt == 0 else None
            if heir is not None and await self._store.memberships(heir, [room]):
                return heir
            after = await self._next(room, heir, fallback)
            if heir is None and after is None:
                return None  # nobody is left; whoever joins from now on sees no owner and takes the room
            owner_was, heir, fallback = heir, after, None
        self._log.warn("room {room}: {tries} heirs in a row left as they were chosen; its owner is {owner}",
                       room=room, tries=MAX_HANDS, owner=heir)
        return None

    async def _next(self, room: str, leaving: str | None, preferred: str | None = None) -> str | None:
        """The id of the member who takes over from ``leaving`` (``preferred`` if still a member)."""
        memberships = await self._store.room_memberships(room, MAX_MEMBERS_READ)
        if preferred is not None and preferred != leaving and any(m.user_id == preferred for m in memberships):
            return preferred
        found = successor(memberships, leaving)
        return found.user_id if found is not None else None

    async def announce(self, room: str, owner) -> None:
        """Tell the room its new owner (a ``member`` ``role`` ``owner`` event), when it has one."""
        if owner is None or owner is LOST:
            return
        user = await self._store.get_user(owner)
        if user is not None:
            self._events.member_changed(room, user.username, "role", "owner")
