"""Reactions and thread summaries of the in-memory store (a mixin of ``chatd.storage.memory.MemoryStore``).

Each method runs whole in one call, so it is as atomic as the conditional
writes of ``chatd.storage.mongo_threads`` that it stands in for.
"""

from __future__ import annotations

from dataclasses import replace

from chatd.storage.memory_files import answer
from chatd.storage.records import TooManyKinds


class MemoryThreads:
    """Works on ``self._messages``: (room, seq) → Message."""

    @answer
    def react(self, room, seq, emoji, user_id, username, on, max_kinds=20):
        key = f"{emoji} {user_id}"
        message = self._messages.get((room, seq))
        if message is None or message.deleted:
            return None, False
        has = key in message.reactions
        if has == on:
            return message, False
        kinds = message.reaction_groups()
        if on and emoji not in kinds and len(kinds) >= max_kinds:
            raise TooManyKinds(max_kinds)
        reactions = (*message.reactions, key) if on else tuple(k for k in message.reactions if k != key)
        reactors = {**(message.reactors or {}), user_id: username} if on else message.reactors
        message = self._messages[(room, seq)] = replace(message, reactions=reactions, reactors=reactors)
        return message, True

    @answer
    def thread_reply(self, room, root, reply_seq, at):
        message = self._messages.get((room, root))
        if message is None:
            return None
        was = message.thread or {"replies": 0, "last_reply_at": at, "last_reply_seq": 0}
        thread = {"replies": was["replies"] + 1, "last_reply_at": max(at, was["last_reply_at"]),
                  "last_reply_seq": max(reply_seq, was["last_reply_seq"])}
        message = self._messages[(room, root)] = replace(message, thread=thread)
        return message

    @answer
    def thread_replies(self, room, root, limit, before=None):
        found = [m for (r, seq), m in self._messages.items()
                 if r == room and m.reply_to == root and (before is None or seq < before)]
        return sorted(found, key=lambda m: m.seq, reverse=True)[:limit]
