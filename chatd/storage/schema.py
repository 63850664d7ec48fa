"""The store's schema version, and what each version changed (docs/BEHAVIOUR.md, Operations).

The version is kept in the ``meta`` collection as ``{_id: "schema", version: N}``
and only ever raised (``$max``), so processes of different ages starting at once
cannot lower it. Each migration is idempotent and made of conditional writes, so
several chatd processes may run it at the same moment; a process records the
version only after its own pass is complete.

Versions:

1. users, messages, rooms (their heads: last seq, members), memberships.
2. rooms are records: ``visibility``, ``topic``, ``owner`` (a user id), ``created_at``;
   memberships have a ``role``. Rooms from version 1 become public rooms whose earliest
   member (by ``joined_at``, then user id) is the owner; a membership without a role is a member.
3. messages have ``words`` (their text's lower-cased words, chatd.storage.words: the search index) and,
   when they mention someone, ``mentions`` and ``mention_ids``; memberships may have ``mentions`` and
   ``mention_seq``. Messages from before get their ``words`` (none is mentioned: mentions are decided
   only when a message is stored).
4. messages have ``ix`` (0: postings not written yet, 1: written) and the ``postings`` collection holds one
   ``{_id: "room:seq:word", w, k, rk, t, r, s}`` per (word, message) (chatd.storage.mongo_search).
   Messages from before get ``ix: 0`` and
   are indexed by the start-up sweep.
"""

from __future__ import annotations

SCHEMA_VERSION = 4
META_ID = "schema"


def earliest(memberships):
    """The membership that owns a migrated room: joined first, ties broken by user id, so every
    process running the migration picks the same one."""
    return min(memberships, key=lambda m: (m.joined_at, m.user_id), default=None)
