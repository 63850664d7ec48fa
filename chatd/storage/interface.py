"""What chatd asks of its store. Every method returns a Deferred.

Two implementations keep to it: ``MongoStore`` (txmongo, production) and
``MemoryStore`` (tests); ``tests/test_store_contract.py`` runs one suite
against both.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface


class IStore(Interface):
    """Users and revoked tokens (messages, counters and files join later)."""

    ready = Attribute("True once indexes exist and the store has answered.")

    def ping():
        """Fire with None if the store answers, else fail with StoreUnavailable."""

    def create_user(username, email, password_hash, created_at):
        """Insert a user; the first user ever stored is ``admin``. Fail with DuplicateKey."""

    def get_user(user_id):
        """The UserRecord with this id, or None (also for a malformed id)."""

    def find_user_by_login(login):
        """The UserRecord whose username or email equals ``login`` case-insensitively, or None."""

    def list_users(limit, after=None, ids=None):
        """Up to ``limit`` UserRecords in creation order, after the id ``after``, optionally among ``ids``."""

    def update_user(user_id, changes):
        """Apply ``changes`` (field → value) and return the new UserRecord, or None if absent. DuplicateKey."""

    def delete_user(user_id):
        """Remove the user; True if there was one."""

    def count_admins():
        """How many users have the admin role and are not banned."""

    def revoke_token(jti, expires_at):
        """Remember ``jti`` as revoked until ``expires_at`` (a UTC datetime)."""

    def is_token_revoked(jti):
        """True if ``jti`` was revoked."""
