"""While the bus is down, removals made on other processes are read from the store (SPEC.md, Rooms and roles:
removing a member ends their membership on every socket and process at once; Guarantees: nobody reads a
private or direct room they are not a member of, live frames included).

With the bus up, a removal elsewhere arrives as an event at once. While it is down, that event waits on the
process that made it, but the others' messages still reach this process's sockets from the store: so, each
time the store is read for them (about once a second, and once more when the bus returns), the members of
every private and direct room joined here are read too, and a socket whose user is no longer one leaves the
room (``left``, reason ``removed``: it cannot be told from here whether they left by themselves elsewhere).
Public rooms are open to everyone and are not checked.
"""

from __future__ import annotations

from chatd.rooms.ownership import MAX_MEMBERS_READ


async def drop_non_members(store, registry, local, rooms, forget=lambda user_id: None) -> None:
    """Make the sockets of users who are no longer members of the closed rooms among ``rooms`` leave them
    (``local``: chatd.chat.events.LocalEvents; ``forget``: drops a cached user, whose rooms are stale)."""
    heads = await store.room_heads(list(rooms)) if rooms else {}
    for room, head in heads.items():
        if head.kind == "public":
            continue
        # Only sockets that had joined before the members are read: a join after it checked for itself.
        before = {sock.user_id for sock in registry.subscribers(room)}
        if not before:
            continue
        members = {m.user_id for m in await store.room_memberships(room, MAX_MEMBERS_READ)}
        for user_id in sorted(before - members):
            if any(sock.user_id == user_id for sock in registry.subscribers(room)):
                forget(user_id)
                local.lost_access(room, user_id)
