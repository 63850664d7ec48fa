"""Bans (SPEC.md: ``POST``/``DELETE /api/users/{id}/ban``): admins only, never themselves nor the last admin.

A banned user's tokens are refused with 403, their login too (with the
reason), and their open sockets close with 4003.
"""

from __future__ import annotations

from twisted.logger import Logger

from chatd import errors
from chatd.storage.records import LastAdmin, UserRecord


class Moderation:
    """Banning and unbanning; ``events`` closes a banned user's sockets."""

    _log = Logger()

    def __init__(self, store, events) -> None:
        self._store = store
        self._events = events

    async def ban(self, principal, user_id: str, reason: str | None) -> None:
        """Ban a user (admin only): their tokens stop working and their sockets close with 4003."""
        target = await self._moderated(principal, user_id)
        if target.id == principal.user.id:
            raise errors.forbidden("You cannot ban yourself.")
        try:
            banned = await self._store.update_user(user_id, {"banned": True, "ban_reason": reason})
        except LastAdmin:
            raise errors.forbidden("The last admin cannot be banned.") from None
        if banned is None:
            raise errors.not_found("No such user.")
        self._events.user_banned(user_id)
        self._log.info("user {user_id} banned by {admin}", user_id=user_id, admin=principal.user.id)

    async def unban(self, principal, user_id: str) -> None:
        await self._moderated(principal, user_id)
        if await self._store.update_user(user_id, {"banned": False, "ban_reason": None}) is None:
            raise errors.not_found("No such user.")
        self._log.info("user {user_id} unbanned by {admin}", user_id=user_id, admin=principal.user.id)

    async def _moderated(self, principal, user_id: str) -> UserRecord:
        if not principal.is_admin:
            raise errors.forbidden("Only an admin may ban or unban.")
        user = await self._store.get_user(user_id)
        if user is None:
            raise errors.not_found("No such user.")
        return user
