"""Direct rooms (SPEC.md: POST /api/dms; Details: Direct rooms).

The room of exactly a set of people is named by a digest of their sorted user
ids (chatd.rooms.naming), so the same set asked for by any of them is the same
room. Two members asking at the same moment both try to record it; the store's
unique name lets one win, and both then make every member a member (a
membership is unique too, so nothing is doubled): both answer the same room.
Only the request that recorded it tells the others with ``invited``.
"""

from __future__ import annotations

from chatd import errors
from chatd.rooms import bodies
from chatd.rooms.naming import direct_name
from chatd.storage.records import DuplicateKey
from chatd.times import utc_from


class DirectRooms:
    """``POST /api/dms``."""

    def __init__(self, store, views, sequencer, receipts, events, clock) -> None:
        self._store = store
        self._views = views
        self._sequencer = sequencer
        self._receipts = receipts
        self._events = events
        self._clock = clock

    async def open(self, principal, body: dict) -> tuple[int, dict]:
        """(201, Room) when this request made the room, (200, Room) when it existed."""
        names = bodies.direct_users(body)
        me = principal.user
        others = []
        for name in names:
            user = None if "@" in name else await self._store.find_user_by_login(name)
            if user is None or user.banned:
                raise errors.invalid("Some of those users do not exist.", {"users": f"no such user: {name}"})
            if user.id != me.id and user.id not in {u.id for u in others}:
                others.append(user)
        if not others:
            raise errors.invalid("Name at least one other user.", {"users": "at least one other user"})
        room = direct_name([me.id, *(u.id for u in others)])
        now = utc_from(self._clock.seconds())
        try:
            await self._store.create_room(room, "direct", "", None, now)
            created = True
        except DuplicateKey:
            created = False
        state = await self._sequencer.current(room)
        for user in (me, *others):
            if await self._store.add_membership(room, user.id, now, state.last_seq):
                self._receipts.joined(room, user.id, state.last_seq)
        head = (await self._store.room_heads([room]))[room]
        view = await self._views.one(head)
        if created:
            for user in others:
                self._events.invited(user.id, room, view, me.username)
        return (201 if created else 200), view
