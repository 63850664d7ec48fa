"""A room's members and their roles through the REST API (SPEC.md: /api/rooms/{room}/members).

Owners and moderators invite (the user is a member at once, and told with
``invited``) and remove anyone but the owner; anyone may remove themselves; the
owner (or an admin) changes roles, making someone ``owner`` hands the room over
and makes the old owner a moderator. Direct rooms have fixed members: no
invitation, removal or leaving there. Every change is told to the room with a
``member`` event; a removed member's sockets leave the room at once, on every
process (chatd.chat.events ``member_left`` with ``reason`` "removed").
"""

from __future__ import annotations

from chatd import errors
from chatd.rooms import bodies
from chatd.rooms.access import MODERATE, OWN, SEE, RoomAccess, Standing, allows
from chatd.rooms.ownership import LOST, MAX_MEMBERS_READ
from chatd.times import utc_from

FIXED = "A direct room's members are fixed."


class RoomMembers:
    """Listing, inviting, re-roling and removing members."""

    def __init__(self, store, access: RoomAccess, views, ownership, sequencer, receipts, events, clock) -> None:
        self._store = store
        self._access = access
        self._views = views
        self._ownership = ownership
        self._sequencer = sequencer
        self._receipts = receipts
        self._events = events
        self._clock = clock

    async def listed(self, principal, room: str) -> list[dict]:
        """Every member, by joining time, with role and whether they are online."""
        standing = await self._access.require(principal.user, room, SEE, exists=True)
        memberships = sorted(await self._store.room_memberships(room, MAX_MEMBERS_READ),
                             key=lambda m: (m.joined_at, m.user_id))
        users = {u.id: u for u in await self._store.get_users([m.user_id for m in memberships])}
        return [self._views.member(m, users[m.user_id], standing.head.owner_id)
                for m in memberships if m.user_id in users]

    async def _target(self, username: str):
        user = await self._store.find_user_by_login(username)
        if user is None or "@" in username:
            raise errors.not_found("No such user.")
        return user

    async def invite(self, principal, room: str, body: dict) -> tuple[int, dict]:
        """(201, the new member), or (200, the member) when they already were one."""
        found = bodies.invitation(body)
        standing = await self._access.require(principal.user, room, MODERATE, exists=True)
        self._not_direct(standing)
        role = found.get("role", "member")
        if role == "moderator" and not (principal.is_admin or standing.role == "owner"):
            raise errors.forbidden("Only the room's owner may make moderators.")
        user = await self._target(found["user"])
        if user.banned:
            raise errors.not_found("No such user.")
        now = utc_from(self._clock.seconds())
        state = await self._sequencer.current(room)
        added = await self._store.add_membership(room, user.id, now, state.last_seq, role)
        [membership] = await self._store.memberships(user.id, [room])
        if added:
            self._receipts.joined(room, user.id, state.last_seq)
            head = (await self._store.room_heads([room]))[room]
            self._events.invited(user.id, room, await self._views.one(head), principal.user.username)
            self._events.member_changed(room, user.username, "added", membership.role)
            await self._ownership.joined(room, user.id)  # an admin's invitation to a room nobody owns
        return (201 if added else 200), self._views.member(membership, user, standing.head.owner_id)

    async def set_role(self, principal, room: str, username: str, body: dict) -> dict:
        """The member with their new role; ``owner`` hands the room over."""
        role = bodies.role_change(body)
        standing = await self._access.require(principal.user, room, OWN, exists=True)
        user = await self._target(username)
        found = await self._store.memberships(user.id, [room])
        if not found:
            raise errors.not_found("That user is not a member of the room.")
        owner_id = standing.head.owner_id
        if role == "owner":
            if user.id != owner_id:
                # Conditional on the owner read above; should the new owner leave meanwhile, the room goes
                # back to the old one (or on to the next in line), never to a non-member.
                owner = await self._ownership.hand(room, owner_id, user.id, fallback=owner_id)
                if owner is LOST:
                    raise errors.conflict("The room changed hands meanwhile; try again.")
                if owner != user.id:
                    if owner != owner_id:
                        await self._ownership.announce(room, owner)
                    raise errors.not_found("That user is not a member of the room.")
                if owner_id is not None and await self._store.set_role(room, owner_id, "moderator") is not None:
                    old = await self._store.get_user(owner_id)
                    if old is not None:
                        self._events.member_changed(room, old.username, "role", "moderator")
                owner_id = user.id
        elif user.id == owner_id:
            raise errors.invalid("The owner keeps that role: make someone else owner first.", {"role": "owner"})
        else:
            await self._store.set_role(room, user.id, role)
        self._events.member_changed(room, user.username, "role", role)
        found = await self._store.memberships(user.id, [room])
        if not found:  # they left meanwhile
            raise errors.not_found("That user is not a member of the room.")
        return self._views.member(found[0], user, owner_id)

    async def remove(self, principal, room: str, username: str) -> None:
        """End a membership: one's own (anyone), or another's (owner, moderator or admin; never the owner's)."""
        user = await self._target(username)
        myself = user.id == principal.user.id
        standing = await self._access.require(principal.user, room, SEE if myself else MODERATE, exists=True)
        self._not_direct(standing)
        if not myself and user.id == standing.head.owner_id:
            raise errors.forbidden("Nobody removes the room's owner.")
        membership = await self._store.memberships(user.id, [room])
        if not membership or not await self._store.remove_membership(room, user.id):
            raise errors.not_found("That user is not a member of the room.")
        self._events.member_left(room, user.id, user.username, None if myself else "removed")
        role = "owner" if user.id == standing.head.owner_id else membership[0].role
        self._events.member_changed(room, user.username, "removed", role)
        await self._ownership.departed(room, user.id)

    @staticmethod
    def _not_direct(standing: Standing) -> None:
        if standing.kind == "direct":
            if not allows(standing, SEE):
                # A site admin moderates messages anywhere, direct rooms included, but a direct room is
                # closed to non-members: as if it did not exist (404), never a 403 that tells it does.
                raise errors.not_found("No such room.")
            raise errors.forbidden(FIXED)
