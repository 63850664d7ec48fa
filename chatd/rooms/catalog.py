"""Rooms as the REST API shows them: listed, created, read and changed (SPEC.md: /api/rooms, /api/rooms/{room}).

Every answer goes through the access rule (chatd.rooms.access): the list holds
every public room with a member or a message and the caller's own rooms (their
memberships read from the store, never from a cached user); a private or
direct room is a 404 to whoever may not see it.
"""

from __future__ import annotations

from chatd import errors
from chatd.rooms import bodies
from chatd.rooms.access import OWN, SEE, RoomAccess
from chatd.storage.records import DuplicateKey
from chatd.times import utc_from


class RoomCatalog:
    """``GET/POST /api/rooms`` and ``GET/PATCH /api/rooms/{room}``."""

    def __init__(self, store, access: RoomAccess, views, sequencer, events, clock) -> None:
        self._store = store
        self._access = access
        self._views = views  # chatd.rooms.views.RoomViews
        self._sequencer = sequencer  # a room's last seq: where a new member's unread count starts
        self._events = events
        self._clock = clock

    async def listed(self, user) -> list[dict]:
        """Public rooms with a member or a message, and every room ``user`` is a member of, by name."""
        heads = await self._store.list_rooms()
        closed = [head.name for head in heads if head.kind != "public"]
        mine = {m.room for m in await self._store.memberships(user.id, closed)} if closed else set()
        shown = [head for head in heads
                 if (head.kind == "public" and (head.members > 0 or self._views.last_seq(head) > 0))
                 or head.name in mine]
        return await self._views.views(sorted(shown, key=lambda head: head.name))

    async def create(self, principal, body: dict) -> dict:
        """A new room, the caller its owner and first member; 409 when the name is taken."""
        found = bodies.new_room(body)
        user, now = principal.user, utc_from(self._clock.seconds())
        try:
            await self._store.create_room(found["name"], found["visibility"], found.get("topic", ""), user.id, now)
        except DuplicateKey:
            raise errors.conflict("That room name is taken.", {"name": "taken"}) from None
        state = await self._sequencer.current(found["name"])
        if await self._store.add_membership(found["name"], user.id, now, state.last_seq):
            self._events.presence(found["name"], user.id, user.username, "join")
        return await self.get(principal, found["name"])

    async def get(self, principal, room: str) -> dict:
        standing = await self._access.require(principal.user, room, SEE, exists=True)
        return await self._views.one(standing.head)

    async def change(self, principal, room: str, body: dict) -> dict:
        """New topic and/or visibility (owner or admin); the room's members are told with a ``room`` frame."""
        changes = bodies.room_changes(body)
        await self._access.require(principal.user, room, OWN, exists=True)
        head = await self._store.update_room(room, changes)
        if head is None:
            raise errors.not_found("No such room.")
        view = await self._views.one(head)
        self._events.room_changed(room, view)
        return view
