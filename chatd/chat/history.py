"""Reading rooms' history, room lists and a user's sessions (SPEC.md, Details: History, Unread).

Recent messages come from the in-memory RoomState cache; older ones from the
store by id (seqs are gap-free, so a page is a known list of ids).
"""

from __future__ import annotations

from chatd.chat import frames
from chatd.chat.roomstate import RoomBook, RoomState
from chatd.times import iso8601

UNREAD_EXACT_UP_TO = 1000
READERS = 200  # read positions listed per room: enough for "seen by" under recent messages
# ``joined`` is one frame: its history is cut to this many bytes so that it fits, with room to
# spare, in a socket's 1 MiB of unsent bytes (SPEC.md, Slow consumers). 1,000 messages of 4,000
# emoji would be 16 MB; past the cut the client pages through REST, as ``truncated`` tells it.
JOIN_HISTORY_BYTES = 512 * 1024


class History:
    """Reads history for joins and the REST routes, from the room cache first and the store by id."""

    def __init__(self, store, rooms: RoomBook, sequencer, presence, receipts=None) -> None:
        self._store = store
        self._rooms = rooms
        self._sequencer = sequencer  # a room caught up with the store before its history is read
        self._presence = presence  # how many of a room's members are online (on any process)
        self._receipts = receipts  # read positions heard but maybe not stored yet

    async def bodies(self, state: RoomState, after: int, upto: int) -> list[bytes]:
        """Message bodies with after < seq <= upto, oldest first."""
        return [body for _, body in await self._numbered(state, after, upto)]

    async def _numbered(self, state: RoomState, after: int, upto: int) -> list[tuple[int, bytes]]:
        entries = state.cached(after, upto)
        if entries is not None:
            return [(entry.seq, entry.body) for entry in entries]
        messages = await self._store.get_messages(state.name, list(range(after + 1, upto + 1)))
        return [(message.seq, frames.message_body(message)) for message in messages]

    async def for_join(self, state: RoomState, since: int | None) -> tuple[list[bytes], int, bool]:
        """``joined.history``: the latest 50, or everything after ``since`` (at most 1000), within
        JOIN_HISTORY_BYTES: the newest that fit of the latest 50; the oldest that fit after ``since``.

        Returns the bodies, the last seq they cover, and whether they were truncated.
        """
        last = state.last_seq
        if since is None:
            numbered = await self._numbered(state, max(0, last - frames.HISTORY_LIMIT), last)
            return [body for _, body in _fitting(reversed(numbered))][::-1], last, False
        after = min(since, last)
        upto = min(last, after + frames.SINCE_LIMIT)
        numbered = await self._numbered(state, after, upto)
        kept = _fitting(numbered)
        if len(kept) < len(numbered):
            upto = kept[-1][0] if kept else after
        return [body for _, body in kept], upto, upto < last

    async def page(self, room: str, limit: int, before: int | None) -> dict:
        """REST: the latest ``limit`` messages before ``before``, oldest first, and the next cursor."""
        state = await self._sequencer.current(room)
        upto = state.last_seq if before is None else min(before - 1, state.last_seq)
        after = max(0, upto - limit)
        bodies = await self.bodies(state, after, upto) if upto > 0 else []
        return {"messages": bodies, "next_before": after + 1 if after > 0 else None}

    async def rooms(self) -> list[dict]:
        """REST: every room with a member or a message."""
        listed = []
        for head in await self._store.list_rooms():
            state = self._rooms.peek(head.name)
            last_seq = max(head.last_seq, state.last_seq if state else 0)
            last_at = state.last_message_at if state and state.last_message_at else head.last_message_at
            if head.members <= 0 and last_seq == 0:
                continue
            listed.append({
                "name": head.name,
                "online": self._presence.online_count(head.name),
                "members": head.members,
                "last_message_at": iso8601(last_at) if last_at else None,
            })
        return sorted(listed, key=lambda room: room["name"])

    async def reads(self, room: str) -> list[dict]:
        """REST: how far the room's members have read (for "seen by"), furthest first, at most READERS."""
        memberships = await self._store.room_memberships(room, READERS)
        users = {user.id: user for user in await self._store.get_users([m.user_id for m in memberships])}
        reads = []
        for membership in memberships:
            user = users.get(membership.user_id)
            heard = self._receipts.position(room, membership.user_id) if self._receipts is not None else 0
            seq = max(membership.read_seq, heard)
            if user is not None and seq > 0:
                reads.append({"user": user.username, "user_id": user.id, "seq": seq})
        return sorted(reads, key=lambda read: -read["seq"])

    async def sessions(self, user) -> list[dict]:
        """REST: the rooms ``user`` is a member of, with unread counts."""
        sessions = []
        for membership in sorted(await self._store.memberships(user.id, list(user.rooms)), key=lambda m: m.room):
            state = await self._sequencer.current(membership.room)
            heard = self._receipts.position(membership.room, user.id) if self._receipts is not None else 0
            seen = max(membership.read_seq, membership.joined_seq, heard)
            sessions.append({
                "room": membership.room,
                "joined_at": iso8601(membership.joined_at),
                "last_message_at": iso8601(state.last_message_at) if state.last_message_at else None,
                "unread": await self._unread(state, user.id, seen),
                # Counted when each mention was stored; cleared by reading past the latest (docs/BEHAVIOUR.md).
                "mentions": membership.mentions if membership.mention_seq > seen else 0,
            })
        return sessions

    async def _unread(self, state: RoomState, user_id: str, seen: int) -> int:
        """Messages from others after ``seen``; past 1000 of them, every message counts."""
        if state.last_seq - seen > UNREAD_EXACT_UP_TO:
            return state.last_seq - seen
        entries = state.cached(seen, state.last_seq)
        if entries is not None:
            return sum(1 for entry in entries if entry.user_id != user_id)
        messages = await self._store.get_messages(state.name, list(range(seen + 1, state.last_seq + 1)))
        return sum(1 for message in messages if message.user_id != user_id)



def _fitting(numbered) -> list[tuple[int, bytes]]:
    """The leading (seq, body) pairs whose bodies fit in JOIN_HISTORY_BYTES together."""
    kept, size = [], 0
    for seq, body in numbered:
        size += len(body) + 1
        if size > JOIN_HISTORY_BYTES:
            break
        kept.append((seq, body))
    return kept
