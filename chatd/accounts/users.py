"""The users resource (SPEC.md's ``/api/users``): listing, reading, changing and deleting accounts.

A user may change themselves, an admin anyone; only an admin changes roles,
and the store keeps at least one admin who is not banned. A password change
revokes every earlier token; a rename is shown on everything the user wrote,
so that the old name, which anyone may now register, never stands for it.
"""

from __future__ import annotations

from twisted.logger import Logger

from chatd import errors
from chatd.accounts import validation
from chatd.accounts.views import user_view
from chatd.ratelimit import KeyedRateLimiter, Rate, address_key
from chatd.storage.records import DuplicateKey, LastAdmin, UserRecord

# The author shown on a deleted user's messages: not a valid username, so nobody can take it.
DELETED_AUTHOR = "[deleted]"
# Changes to one account (PATCH): enough for anyone editing their profile, not for flooding the
# change feed every chatd polls. Password changes, which cost a bcrypt hash, have a stricter budget.
USER_CHANGE_RATE = Rate(1, 20)
PASSWORD_CHANGE_RATE = Rate(1 / 60, 5)


async def refuse_taken(store, username: str | None, email: str | None, user_id: str | None = None) -> None:
    """409 if another account has this username or email. Checked before any password is hashed:
    a taken name must not cost a bcrypt hash (the store's unique index still decides races)."""
    taken = {}
    for field, value in (("username", username), ("email", email)):
        if value is not None:
            other = await store.find_user_by_login(value)
            if other is not None and other.id != user_id:
                taken[field] = "already taken"
    if taken:
        raise errors.conflict(f"That {' and '.join(taken)} {'are' if len(taken) > 1 else 'is'} taken.", taken)


def _limit(limiter: KeyedRateLimiter, key: str) -> None:
    wait = limiter.take(key)
    if wait:
        raise errors.rate_limited(wait)


class Users:
    """The rules of SPEC.md's users routes; ``events`` takes their effects to open sockets."""

    _log = Logger()

    def __init__(self, store, hasher, clock, presence, events, ownership=None) -> None:
        self._store = store
        self._ownership = ownership  # chatd.rooms.ownership.Ownership: a deleted owner's rooms are handed over
        self._hasher = hasher
        self._clock = clock
        self._presence = presence
        self._events = events
        self._changes = KeyedRateLimiter(USER_CHANGE_RATE, clock)
        self._password_changes = KeyedRateLimiter(PASSWORD_CHANGE_RATE, clock)

    def view(self, user: UserRecord) -> dict:
        return user_view(user, self._presence.is_online(user.id))

    async def list_users(self, limit: int, after: str | None, online_only: bool) -> dict:
        ids = self._presence.online_user_ids() if online_only else None
        users = await self._store.list_users(limit, after, ids)
        next_after = users[-1].id if len(users) == limit else None
        return {"users": [self.view(user) for user in users], "next": next_after}

    async def get_user(self, user_id: str) -> dict:
        user = await self._store.get_user(user_id)
        if user is None:
            raise errors.not_found("No such user.")
        return self.view(user)

    async def _target(self, principal, user_id: str) -> UserRecord:
        """The user ``principal`` may change: themselves, or anyone for an admin."""
        if principal.user.id != user_id and not principal.is_admin:
            raise errors.forbidden("Only the user themselves or an admin may do this.")
        user = await self._store.get_user(user_id)
        if user is None:
            raise errors.not_found("No such user.")
        return user

    async def update_user(self, principal, user_id: str, body: dict, address: str = "") -> dict:
        requested = validation.user_changes(body)
        target = await self._target(principal, user_id)
        # Values equal to the current ones change nothing, and write nothing to the change feed.
        changes = {name: value for name, value in requested.items()
                   if name == "password" or getattr(target, name) != value}
        if "role" in changes and not principal.is_admin:
            raise errors.forbidden("Only an admin may change a role.")
        if changes:
            _limit(self._changes, user_id)
            await refuse_taken(self._store, changes.get("username"), changes.get("email"), user_id)
        if "password" in changes:
            _limit(self._password_changes, user_id)
            changes["password_hash"] = await self._hasher.hash(changes.pop("password"), address_key(address))
            # Every token issued before now stops working, this request's included.
            changes["tokens_valid_after"] = self._clock.seconds()
        try:
            user = await self._store.update_user(user_id, changes) if changes else target
        except DuplicateKey as e:
            raise errors.conflict(f"That {e.field} is taken.", {e.field: "already taken"}) from None
        except LastAdmin:
            raise errors.forbidden("The last admin cannot give up the role.") from None
        if user is None:
            raise errors.not_found("No such user.")
        if "username" in requested:
            # Also when unchanged: asking again repairs names a failed earlier rename left behind.
            await self._show_author_as(user_id, user.username)
        if "tokens_valid_after" in changes:
            if principal.user.id == user_id:
                # Revoked by jti too: a token issued in the same instant as the change passes the time check.
                await self._store.revoke_token(principal.claims.jti, principal.claims.expires_at)
            self._events.password_changed(user_id)
        return self.view(user)

    async def _show_author_as(self, user_id: str, username: str) -> None:
        """Open sockets and every stored message of ``user_id`` show ``username`` from now on."""
        self._events.user_renamed(user_id, username)
        await self._store.rename_author(user_id, username)

    async def delete_user(self, principal, user_id: str) -> None:
        await self._target(principal, user_id)
        # Their rooms as the store has them now (a cached copy may be seconds old): those they owned are
        # handed over once they are gone.
        rooms = [room for user in await self._store.get_users([user_id]) for room in user.rooms]
        try:
            deleted = await self._store.delete_user(user_id)
        except LastAdmin:
            raise errors.forbidden("The last admin cannot be deleted.") from None
        if not deleted:
            raise errors.not_found("No such user.")
        self._events.user_deleted(user_id)
        await self._show_author_as(user_id, DELETED_AUTHOR)
        if self._ownership is not None:
            await self._ownership.departed_all(user_id, rooms)
        self._log.info("deleted user {user_id}", user_id=user_id)
