"""Joining and leaving rooms (SPEC.md, Details: Membership and History).

A ``join`` makes the user a member (until an explicit ``leave``) and
subscribes the socket; it answers ``joined`` with the room's online members
and its history: the latest 50, or everything after ``since``. Becoming a
member asks the access rule (chatd.rooms.access): anyone may join a public
room, only members (and admins, for private rooms) a private or direct one.
The first join of a room nobody recorded creates it, public, its joiner the
owner. A ``leave`` ends the membership for the user, so each of their sockets
that joined the room leaves it; an owner leaving hands the room over.
"""

from __future__ import annotations

from chatd.chat import frames
from chatd.chat.connection import ChatSocket, require_joined
from chatd.rooms.access import JOIN, allows
from chatd.rooms.naming import is_direct_name
from chatd.storage.records import DuplicateKey
from chatd.times import utc_from

MAX_ROOMS_PER_USER = 500


class Membership:
    """The ``join`` and ``leave`` frames."""

    def __init__(self, store, registry, presence, sequencer, history, receipts, events, clock, refused,
                 access, ownership, max_rooms: int = MAX_ROOMS_PER_USER) -> None:
        self._store = store
        self._access = access  # chatd.rooms.access.RoomAccess: may this user join
        self._ownership = ownership  # chatd.rooms.ownership.Ownership: hand-over when an owner leaves
        self._receipts = receipts  # a new member has read the room up to when they joined
        self._registry = registry
        self._presence = presence  # the room's members online now, on any process
        self._sequencer = sequencer  # the room, caught up with the store, before its history is read
        self._history = history
        self._events = events
        self._clock = clock
        self._refused = refused  # refused(limit): counts a refusal for /metrics
        self._max_rooms = max_rooms

    async def join(self, sock: ChatSocket, frame: frames.Join) -> None:
        state = await self._sequencer.current(frame.room)
        state.busy += 1  # keep this state (and its cache) while the join awaits the store
        try:
            # The registry's member rooms come from the user's (cached) record and are kept current by
            # the events of every process; while the bus is down those may be missing: ask the store.
            if not self._registry.is_member(sock.user_id, frame.room) or not getattr(self._events, "up", True):
                await self._become_member(sock, frame.room, state.last_seq)
            history, upto, truncated = await self._history.for_join(state, frame.since)
            while not truncated and upto < state.last_seq and not sock.gone:
                # Messages were stored while the history was read. The cache has them unless it
                # was reset meanwhile; then they are read too, until nothing is missing.
                tail = state.cached(upto, state.last_seq)
                if tail is not None:
                    history += [entry.body for entry in tail]
                    break
                last = state.last_seq
                history += await self._history.bodies(state, upto, last)
                upto = last
        finally:
            state.busy -= 1
        if sock.gone:
            return
        # No await from the last check to here: from now on the socket receives the room live.
        self._registry.subscribe(sock, frame.room)
        sock.send(frames.joined_frame(frame.room, self._presence.online_members(frame.room), history, truncated))

    async def _become_member(self, sock: ChatSocket, room: str, last_seq: int) -> None:
        standing = await self._access.current(sock.user_id, room)
        if standing.membership is not None:  # a member already (made so elsewhere)
            self._registry.became_member(sock.user_id, room)
            return
        if self._registry.member_room_count(sock.user_id) >= self._max_rooms:
            self._refused("rooms_per_user")
            raise frames.FrameError(
                "forbidden", f"You are a member of {self._max_rooms} rooms, the most allowed; leave one first.")
        joined_at = utc_from(self._clock.seconds())
        if standing.head is None or standing.head.visibility is None:
            if is_direct_name(room):
                raise frames.FrameError("forbidden", "Direct rooms are made with POST /api/dms.")
            try:
                await self._store.create_room(room, "public", "", sock.user_id, joined_at)
            except DuplicateKey:  # recorded meanwhile, maybe as a private room: ask again
                standing = await self._access.current(sock.user_id, room)
        if not allows(standing, JOIN):
            raise frames.FrameError("forbidden", "That room is private: only its members may join it.")
        if await self._store.add_membership(room, sock.user_id, joined_at, last_seq):
            self._receipts.joined(room, sock.user_id, last_seq)
            self._events.presence(room, sock.user_id, sock.username, "join")
        self._registry.became_member(sock.user_id, room)
        # Read again now that the membership is stored: an owner who left meanwhile may have found
        # nobody to hand the room to.
        await self._ownership.joined(room, sock.user_id)

    async def leave(self, sock: ChatSocket, frame: frames.Leave) -> None:
        require_joined(self._registry, sock, frame.room)
        standing = await self._access.standing(sock.user_id, False, frame.room)  # only its kind matters
        if standing.kind == "direct":
            raise frames.FrameError("forbidden", "Nobody leaves a direct room: its members are fixed.")
        await self._store.remove_membership(frame.room, sock.user_id)
        self._events.member_left(frame.room, sock.user_id, sock.username)
        await self._ownership.departed(frame.room, sock.user_id)
