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

from twisted.internet import defer

from chatd.rooms.access import READ, Standing, allows, needs_membership
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
    """Turns drafts' texts into their ``mentions``: store lookups only for texts with a candidate.

    A write batch is resolved at once: each name, the rooms' heads and each mentioned user's
    memberships (of the batch's non-public rooms only) are asked once for the batch, concurrently. One message at a time, three round trips
    per mention held the writer while the store was busy (rooms at 1,000 msgs/s, one in five
    mentioning: seconds of latency).
    """

    def __init__(self, store, user_named=None) -> None:
        self._store = store
        # The user called exactly that (any case), or None: the cache's user_named in chatd, else the store.
        self._user_named = user_named or store.find_user_by_login

    async def resolve(self, draft: Message) -> Message:
        return (await self.resolve_all([draft]))[0]

    async def resolve_all(self, drafts: list[Message]) -> list[Message]:
        """``drafts`` with their mentions (the same objects where there are none), in order."""
        names = [candidates(draft.text) for draft in drafts]
        wanted = list(dict.fromkeys(name for found in names for name in found))
        if not wanted:
            return drafts
        users = {}
        for name, user in zip(wanted, await _all(self._user_named(name) for name in wanted)):
            # find_user_by_login also matches emails; a name (no "@") never equals one, but be exact.
            if user is not None and user.username.lower() == name:
                users[name] = user
        if not users:
            return drafts
        rooms_of: dict[str, set] = {}  # user id -> the rooms of this batch that mention them
        for draft, found in zip(drafts, names):
            for name in found:
                if name in users:
                    rooms_of.setdefault(users[name].id, set()).add(draft.room)
        heads = await self._store.room_heads(sorted(set().union(*rooms_of.values())))
        # Memberships only where the rule reads them: anyone may read a public room.
        kind = {room: head.kind for room, head in heads.items()}
        asked = {uid: sorted(r for r in rooms if needs_membership(kind.get(r, "public"), READ))
                 for uid, rooms in rooms_of.items()}
        asked = {uid: rooms for uid, rooms in asked.items() if rooms}
        memberships = await _all(self._store.memberships(uid, rooms) for uid, rooms in asked.items())
        member = {(uid, m.room): m for uid, found in zip(asked, memberships) for m in found}
        return [self._mentioning(draft, found, users, heads, member) for draft, found in zip(drafts, names)]

    @staticmethod
    def _mentioning(draft: Message, found: list[str], users: dict, heads: dict, member: dict) -> Message:
        readers, seen = [], set()
        for name in found:
            user = users.get(name)
            if user is None or user.id in seen:
                continue
            seen.add(user.id)
            standing = Standing(user.id, user.role == "admin", heads.get(draft.room), member.get((user.id, draft.room)))
            if allows(standing, READ):
                readers.append(user)
        if not readers:
            return draft
        return replace(draft, mentions=tuple(u.username for u in readers), mention_ids=tuple(u.id for u in readers))


async def _all(calls) -> list:
    """The results of store calls made at once (Deferreds or coroutines), in order."""
    async def one(call):
        return await call
    try:
        return await defer.gatherResults([defer.ensureDeferred(one(call)) for call in calls], consumeErrors=True)
    except defer.FirstError as e:
        e.subFailure.raiseException()  # the store's own error (StoreUnavailable), as one call would raise
