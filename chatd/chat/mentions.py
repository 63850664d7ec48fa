"""Who a message mentions (SPEC.md, Details: Mentions), decided once, when it is stored.

``@name`` mentions the user called ``name`` (case-insensitively) when the ``@`` is
not preceded by a letter, digit or ``_.-`` and the user may read the room, as the
one access rule (chatd.rooms.access) says. The writer asks :class:`MentionResolver`
for each message of a batch before it stores it, so the stored message carries its
``mentions`` (usernames as registered) and ``mention_ids``, and nothing parses the
text again: not history, not the bus, not ``/api/sessions``.

A name runs as far as username characters go; a name followed by ``.``, ``-`` or
``_`` that ends a sentence ("thanks @bob.") is tried without them too.
"""

from __future__ import annotations

import re
from dataclasses import replace

from chatd.rooms.access import READ, Standing, allows
from chatd.storage.records import Message

# The @ must not follow a username character; the name is what username characters follow it.
_MENTION = re.compile(r"(?<![A-Za-z0-9_.\-])@([A-Za-z0-9_.\-]{3,})")
# Looked up per message at most: a message naming more people than this is a list, not a call.
MAX_NAMES = 20
_TRAILING = "._-"


def candidates(text: str | None) -> list[str]:
    """The lower-cased names ``text`` may mention, each once, in order (no store involved)."""
    if not text or "@" not in text:
        return []
    found: dict[str, None] = {}
    for match in _MENTION.finditer(text):
        name = match.group(1)[:32 + len(_TRAILING)]
        tries = [name]
        stripped = name.rstrip(_TRAILING)
        if stripped != name and len(stripped) >= 3:
            tries.append(stripped)
        for one in tries:
            if 3 <= len(one) <= 32:
                found.setdefault(one.lower(), None)
        if len(found) >= MAX_NAMES:
            break
    return list(found)[:MAX_NAMES]


class MentionResolver:
    """Turns a draft's text into its ``mentions``: store lookups only for texts with a candidate."""

    def __init__(self, store) -> None:
        self._store = store

    async def resolve(self, draft: Message) -> Message:
        names = candidates(draft.text)
        if not names:
            return draft
        users = []
        for name in names:
            user = await self._store.find_user_by_login(name)
            # find_user_by_login also matches emails; a name (no "@") never equals one, but be exact.
            if user is not None and user.username.lower() == name and all(u.id != user.id for u in users):
                users.append(user)
        if not users:
            return draft
        head = (await self._store.room_heads([draft.room])).get(draft.room)
        members = {}
        for user in users:
            for membership in await self._store.memberships(user.id, [draft.room]):
                members[user.id] = membership
        readers = [u for u in users
                   if allows(Standing(u.id, u.role == "admin", head, members.get(u.id)), READ)]
        if not readers:
            return draft
        return replace(draft, mentions=tuple(u.username for u in readers), mention_ids=tuple(u.id for u in readers))
