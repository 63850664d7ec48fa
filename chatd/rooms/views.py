"""The ``Room`` and member shapes of SPEC.md, built from store records and what this process knows live."""

from __future__ import annotations

from chatd.times import iso8601


class RoomViews:
    """Builds ``Room`` objects: the record, its owner's username, the live last message time and online count."""

    def __init__(self, store, book, presence) -> None:
        self._store = store
        self._book = book  # chatd.chat.roomstate.RoomBook: a room's newest message may not be in its head yet
        self._presence = presence  # who is online, on any process

    async def views(self, heads) -> list[dict]:
        """Room objects for ``heads``, in their order (owners' names read in one store call)."""
        owner_ids = [head.owner_id for head in heads if head.owner_id and head.kind != "direct"]
        owners = {user.id: user.username for user in await self._store.get_users(owner_ids)} if owner_ids else {}
        return [self.view(head, owners.get(head.owner_id)) for head in heads]

    async def one(self, head) -> dict:
        return (await self.views([head]))[0]

    def last_seq(self, head) -> int:
        state = self._book.peek(head.name)
        return max(head.last_seq, state.last_seq if state else 0)

    def view(self, head, owner: str | None) -> dict:
        state = self._book.peek(head.name)
        last_at = state.last_message_at if state is not None and state.last_message_at else head.last_message_at
        return {
            "name": head.name,
            "visibility": head.kind,
            "topic": head.topic,
            "owner": None if head.kind == "direct" else owner,
            "members": head.members,
            "online": self._presence.online_count(head.name),
            "created_at": iso8601(head.created_at) if head.created_at else None,
            "last_message_at": iso8601(last_at) if last_at else None,
        }

    def member(self, membership, user, owner_id: str | None) -> dict:
        """``{"user", "role", "joined_at", "online"}``."""
        role = "owner" if membership.user_id == owner_id else membership.role
        return {"user": user.username, "role": role, "joined_at": iso8601(membership.joined_at),
                "online": self._presence.is_online(membership.user_id)}
