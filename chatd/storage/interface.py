"""What chatd asks of its store. Every method returns a Deferred.

Two implementations keep to it: ``MongoStore`` (txmongo, production) and
``MemoryStore`` (tests); ``tests/test_store_contract.py`` runs one suite
against both.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface


class IStore(Interface):
    """Users, revoked tokens, messages, rooms and memberships (files join later)."""

    ready = Attribute("True once indexes exist and the store has answered.")

    def ping():
        """Fire with None if the store answers, else fail with StoreUnavailable."""

    def create_user(username, email, password_hash, created_at):
        """Insert a user; the first user ever stored is ``admin``. Fail with DuplicateKey."""

    def get_user(user_id):
        """The UserRecord with this id, or None (also for a malformed id)."""

    def get_users(user_ids):
        """The UserRecords with these ids (unknown or malformed ids are left out), in any order."""

    def find_user_by_login(login):
        """The UserRecord whose username or email equals ``login`` case-insensitively, or None."""

    def list_users(limit, after=None, ids=None):
        """Up to ``limit`` UserRecords in creation order, after the id ``after``, optionally among ``ids``."""

    def update_user(user_id, changes):
        """Apply ``changes`` (field → value) and return the new UserRecord, or None if absent. DuplicateKey.
        A change that would leave no admin who is not banned (a demotion or ban of the last one) fails with
        LastAdmin, decided atomically in the store: two admins demoting themselves at once cannot both succeed."""

    def delete_user(user_id):
        """Remove the user and their memberships (uncounting them from their rooms); True if there was one.
        LastAdmin, as for update_user, when they are the last admin who is not banned."""

    def react(room, seq, emoji, user_id, username, on, max_kinds=20):
        """Add (``on``) or remove the user's ``emoji`` on a message that is not deleted, in one conditional
        write (two processes adding the same user's same emoji store it once): ``(Message, changed)``, or
        ``(None, False)`` if the message is absent or deleted. ``username`` is shown for the user. Adding a
        new emoji to a message holding ``max_kinds`` distinct ones fails with TooManyKinds, decided in the
        same write (concurrent adds cannot pass the limit)."""

    def thread_reply(room, root, reply_seq, at):
        """Count a stored reply in the root's thread summary (replies + 1, the latest reply's time and seq,
        never lowered), atomically in the store; the new root Message, or None if absent."""

    def thread_replies(room, root, limit, before=None):
        """Up to ``limit`` replies to ``root`` with a seq below ``before`` (None: any), newest first."""

    def rename_author(user_id, username):
        """Show ``username`` as the author of every message ``user_id`` wrote, and in the reactions they
        made (after a rename or deletion)."""

    def revoke_token(jti, expires_at):
        """Remember ``jti`` as revoked until ``expires_at`` (a UTC datetime)."""

    def is_token_revoked(jti):
        """True if ``jti`` was revoked."""

    def revoked_since(since):
        """``[(jti, expires_at)]`` revoked at or after epoch second ``since`` (None: every one not yet
        expired); ``expires_at`` is an epoch second."""

    def users_changed_since(since):
        """Ids of users updated or deleted at or after epoch second ``since`` (by any process or the
        admin CLI), so that caches elsewhere can drop them and open sockets be checked again."""

    def insert_messages(messages):
        """Store Messages in order, in one round trip (and count each stored mention on the mentioned
        member's membership: ``mentions`` +1, ``mention_seq`` raised). If one is a duplicate (its seq is taken, or its
        user already sent its client_id to its room), fail with InsertStopped: those before it are
        stored, none after it."""

    def search_messages(rooms, query, user_id=None, before=None, limit=20):
        """Up to ``limit`` Messages of ``rooms`` (names), not deleted, by ``user_id`` if given, whose text has a
        word beginning with each of ``query`` (lower-cased words, chatd.chat.words), newest first: ordered by
        (ts, room, seq) descending (seq as a number: a burst in one millisecond reads 10, 9, 8), those before
        the triple ``before`` only."""

    def get_messages(room, seqs):
        """The stored Messages of ``room`` with these seqs, in seq order; missing ones are left out."""

    def find_client_message(room, user_id, client_id):
        """The Message ``user_id`` sent to ``room`` with ``client_id``, or None."""

    def update_message(room, seq, changes):
        """Set fields of a message that is not deleted (a None value removes the field), in one conditional
        write; the new Message, or None if it is absent or deleted (an edit racing a deletion loses)."""

    def room_heads(rooms):
        """{name: RoomHead} for the rooms among ``rooms`` that the store has seen."""

    def list_rooms():
        """Every RoomHead."""

    def advance_rooms(heads):
        """Raise rooms' last seq and last message time: ``{room: (seq, datetime)}``; never lowers."""

    def create_room(name, visibility, topic, owner_id, created_at):
        """Give the room its record (``public``/``private``/``direct``, topic, owner's user id or None) and
        answer its RoomHead; DuplicateKey when it has one already (the name is the key: one room per name,
        whatever its visibility, also when two processes create it at once)."""

    def update_room(name, changes):
        """Set ``topic`` and/or ``visibility`` of a recorded room; the new RoomHead, or None if absent."""

    def hand_room(name, owner_was, owner_id):
        """Make ``owner_id`` (None: nobody) the owner, only if ``owner_was`` still is; True if it was."""

    def add_membership(room, user_id, joined_at, joined_seq, role="member"):
        """Make the user a member of the room (and count it); False if they already were."""

    def set_role(room, user_id, role):
        """Set a member's role (``member`` or ``moderator``); the new Membership, or None if not a member."""

    def migrate():
        """Bring the stored data to SCHEMA_VERSION (chatd.storage.schema) and answer the version. Idempotent,
        and safe when several processes run it at once: every write is conditional."""

    def remove_membership(room, user_id):
        """End a membership; False if there was none."""

    def memberships(user_id, rooms):
        """The user's Memberships among ``rooms``."""

    def room_memberships(room, limit):
        """Up to ``limit`` Memberships of ``room``, those read furthest first (ties: earliest joined first)."""

    def mark_read(room, user_id, seq):
        """Raise the user's read seq in the room (never lowers it); a read at or past the latest message
        that mentions them sets their mention count to 0."""

    def new_file(name, content_type, room, user_id, uploaded_at):
        """A FileWriter for a new file: ``write(bytes)`` and ``close()`` (answering the FileRecord)
        return Deferreds, ``abort()`` discards what was written. Nothing is visible before close."""

    def file_info(file_id):
        """The FileRecord, or None (also for a malformed id)."""

    def read_file(file_id):
        """A reader of a stored file: ``read(size)`` answers up to ``size`` bytes, b"" at the end."""

    def delete_file(file_id):
        """Remove a file and its bytes; False if there was none."""
