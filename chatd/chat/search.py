"""Searching messages (SPEC.md, ``GET /api/search`` and Details: Search).

Only rooms the caller may read are searched, as the one access rule
(chatd.rooms.access) decides for each room the store knows, so a private or
direct room the caller is not a member of never shows, whatever ``q`` is. The
store does the matching over its index of words (chatd.storage.words); this
module checks the query, picks the rooms and pages: newest first by (ts, room, seq),
seq as a number (a burst within one millisecond reads 10, 9, 8, never 8, 10, 9);
the cursor, opaque to clients, holds the last result's ts and id ("room:seq",
room names have no ":").
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timedelta, timezone

from chatd import errors
from chatd.chat import frames
from chatd.rooms.access import READ, Standing, allows
from chatd.storage.words import words

MAX_Q = 200
MAX_LIMIT = 50
DEFAULT_LIMIT = 20
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICRO = timedelta(microseconds=1)


def parse_q(raw: str | None) -> list[str]:
    """``q``: 1–200 characters holding at least one word, else 400."""
    if raw is None or not 1 <= len(raw) <= MAX_Q:
        raise errors.invalid(f"q must be 1 to {MAX_Q} characters.", {"q": f"1 to {MAX_Q} characters"})
    found = words(raw)
    if not found:
        raise errors.invalid("q must contain a word.", {"q": "no word"})
    return found


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not re.fullmatch(r"\d{1,3}", raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise errors.invalid(f"limit must be a whole number from 1 to {MAX_LIMIT}.", {"limit": f"1 to {MAX_LIMIT}"})
    return int(raw)


def encode_cursor(ts: datetime, message_id: str) -> str:
    raw = json.dumps([(ts - _EPOCH) // _MICRO, message_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def parse_cursor(raw: str | None) -> tuple[datetime, str, int] | None:
    """The (ts, room, seq) a ``before`` cursor stands for; anything not made by encode_cursor is a 400."""
    if raw is None:
        return None
    try:
        if len(raw) > 200:
            raise ValueError("too long")
        micros, message_id = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if not isinstance(micros, int) or isinstance(micros, bool) or not isinstance(message_id, str):
            raise ValueError("bad shape")
        ts = _EPOCH + micros * _MICRO
        room, _, seq = message_id.rpartition(":")
        if not frames.ROOM.fullmatch(room) or not re.fullmatch(r"\d{1,18}", seq):
            raise ValueError("not a message id")
    except (ValueError, TypeError, OverflowError, OSError):
        raise errors.invalid("before is not a cursor from a search.", {"before": "a search cursor"}) from None
    return ts, room, int(seq)


class Search:
    """``GET /api/search``: see the module docstring."""

    def __init__(self, store, access) -> None:
        self._store = store
        self._access = access  # chatd.rooms.access.RoomAccess

    async def readable_rooms(self, user) -> list[str]:
        """Every room the store knows that the rule lets ``user`` read."""
        heads = await self._store.list_rooms()
        mine = {m.room: m for m in await self._store.memberships(user.id, list(user.rooms))}
        is_admin = user.role == "admin"
        return [head.name for head in heads
                if allows(Standing(user.id, is_admin, head, mine.get(head.name)), READ)]

    async def search(self, user, q: str | None, room: str | None, author: str | None, limit: str | None,
                     before: str | None) -> dict:
        query, count, after = parse_q(q), parse_limit(limit), parse_cursor(before)
        if room is not None:
            if not frames.ROOM.fullmatch(room):
                raise errors.invalid("room is not a room name.", {"room": "a room name"})
            await self._access.require(user, room, READ)  # 404 for a room the caller may not read
            rooms = [room]
        else:
            rooms = await self.readable_rooms(user)
        user_id = None
        if author is not None:
            found = await self._store.find_user_by_login(author)
            if found is None or found.username.lower() != author.lower():
                return {"results": [], "next": None}
            user_id = found.id
        found = await self._store.search_messages(rooms, query, user_id, after, count + 1)
        page, more = found[:count], len(found) > count
        return {"results": [json.loads(frames.message_body(m)) for m in page],
                "next": encode_cursor(page[-1].ts, page[-1].id) if more else None}
