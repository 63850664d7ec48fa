"""The one rule: may this user see, read, join, write to, moderate or own this room (SPEC.md, Details:
Rooms and roles, Direct rooms; Guarantees: nobody reads a private or direct room they are not a member of).

Every path that reads or sends room data asks :func:`allows` (directly, or through
:meth:`RoomAccess.require`, which also loads what it decides on and answers the
refusal): REST history by both routes, read positions, files, members, the room
list, sessions, ``join`` (and with it ``since`` recovery and every live frame,
which only joined sockets receive), edits and deletions. Threads, reactions,
mentions and search are to ask it too.

What it decides on: the room's kind (a room without a record is public), the
user's membership and role in it (the owner is the room's ``owner_id``), and
whether the user is a site admin. Reading messages needs membership in a
private or direct room, for admins too (an admin may *join* a private room, and
is then a member that everyone can see); seeing a room (its record and members)
is also open to admins for private rooms, so that they can moderate them.
Direct rooms have no owner and fixed members: nobody moderates or owns them,
but an admin may delete a message there, as anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatd import errors
from chatd.storage.records import Membership, RoomHead

SEE = "see"  # the Room record and its members
READ = "read"  # messages (history, files, live frames), read positions
JOIN = "join"  # become a member through the join frame
WRITE = "write"  # send messages and files: members only, whatever the kind
MODERATE = "moderate"  # invite, remove, delete any message
OWN = "own"  # topic, visibility, roles


@dataclass(frozen=True)
class Standing:
    """A user's standing in a room: what the rule decides on."""

    user_id: str
    is_admin: bool
    head: RoomHead | None  # None: the store has never seen the room
    membership: Membership | None

    @property
    def kind(self) -> str:
        return self.head.kind if self.head is not None else "public"

    @property
    def role(self) -> str | None:
        """``owner``, ``moderator``, ``member``, or None for a non-member."""
        if self.membership is None:
            return None
        if self.head is not None and self.head.owner_id == self.user_id:
            return "owner"
        return self.membership.role


def allows(standing: Standing, need: str) -> bool:
    """Whether ``standing`` is enough for ``need`` (one of SEE, READ, JOIN, WRITE, MODERATE, OWN)."""
    kind, role, admin = standing.kind, standing.role, standing.is_admin
    member = role is not None
    if need == READ:
        return kind == "public" or member
    if need in (SEE, JOIN):
        return kind == "public" or member or (admin and kind == "private")
    if need == WRITE:
        return member
    if need == MODERATE:
        return admin or (kind != "direct" and role in ("owner", "moderator"))
    if need == OWN:
        return kind != "direct" and (admin or role == "owner")
    raise ValueError(f"unknown need {need!r}")


def needs_membership(kind: str, need: str) -> bool:
    """Whether :func:`allows` looks at the membership for ``need`` in a room of this kind (reading a public
    room does not): callers deciding for many users skip the lookups the answer cannot depend on."""
    return not (need == READ and kind == "public")


class RoomAccess:
    """Loads a standing from the store and applies :func:`allows`, answering refusals as SPEC.md says."""

    def __init__(self, store) -> None:
        self._store = store

    async def standing(self, user_id: str, is_admin: bool, room: str) -> Standing:
        """The user's standing, read from the store (memberships are never taken from a cached user)."""
        head = (await self._store.room_heads([room])).get(room)
        found = await self._store.memberships(user_id, [room])
        return Standing(user_id, is_admin, head, found[0] if found else None)

    async def current(self, user_id: str, room: str) -> Standing:
        """The standing of a user known only by id (a socket's): whether they are a site admin is read
        from their account now, as each REST request reads it, not kept from when the socket opened."""
        user = await self._store.get_user(user_id)
        return await self.standing(user_id, user is not None and user.role == "admin", room)

    async def require(self, user, room: str, need: str, exists: bool = False) -> Standing:
        """The standing if it allows ``need``. Otherwise 404 (as if the room did not exist) to whoever may
        not see it, else 403. With ``exists``, a room the store has never seen is a 404 too."""
        standing = await self.standing(user.id, user.role == "admin", room)
        if exists and standing.head is None:
            raise errors.not_found("No such room.")
        if not allows(standing, need):
            if not allows(standing, SEE) or (need == READ and not allows(standing, READ)):
                raise errors.not_found("No such room.")
            raise errors.forbidden(_REFUSALS.get(need, "You may not do that in this room."))
        return standing


_REFUSALS = {
    WRITE: "Only members of the room may do that; join it first.",
    MODERATE: "Only the room's owner and moderators may do that.",
    OWN: "Only the room's owner may do that.",
    JOIN: "That room is private: only its members may join it.",
}
