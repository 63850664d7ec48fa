"""Accounts: registration, login, tokens and the users resource.

This is the domain layer for SPEC.md's auth and users routes. It decides; the
Klein routes in ``chatd.web.api`` only translate HTTP to these calls, and the
store only stores. Outside effects of revocation (closing open WebSockets) go
through the injected ``sockets`` object; who is online comes from ``presence``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger

from chatd import errors
from chatd.accounts import validation
from chatd.accounts.loginguard import LoginGuard
from chatd.ratelimit import KeyedRateLimiter, Rate, address_key
from chatd.storage.records import DuplicateKey, LastAdmin, UserRecord
from chatd.accounts.tokens import Claims, InvalidToken, TokenIssuer
from chatd.views import iso8601, user_view

# WebSocket close codes from SPEC.md.
CLOSE_REVOKED = 4001
CLOSE_BANNED = 4003
# The author shown on a deleted user's messages: not a valid username, so nobody can take it.
DELETED_AUTHOR = "[deleted]"
# Changes to one account (PATCH): enough for anyone editing their profile, not for flooding the
# change feed every chatd polls. Password changes, which cost a bcrypt hash, have a stricter budget.
USER_CHANGE_RATE = Rate(1, 20)
PASSWORD_CHANGE_RATE = Rate(1 / 60, 5)


class NoPresence:
    """Nobody is online: the stand-in until the WebSocket registry is plugged in."""

    def is_online(self, user_id: str) -> bool:
        return False

    def online_user_ids(self) -> list[str]:
        return []


class NoSockets:
    """No sockets to close: the stand-in until the WebSocket registry is plugged in."""

    def close_token(self, jti: str, code: int) -> None:
        pass

    def close_user(self, user_id: str, code: int) -> None:
        pass

    def renamed(self, user_id: str, username: str) -> None:
        pass


@dataclass(frozen=True)
class Principal:
    """Who is making a request: the verified token and the current user record."""

    user: UserRecord
    claims: Claims

    @property
    def is_admin(self) -> bool:
        return self.user.role == "admin"


class Accounts:
    """The rules of SPEC.md's auth and users routes."""

    _log = Logger()

    def __init__(
        self,
        store,
        hasher,
        tokens: TokenIssuer,
        clock,
        address_limiter: KeyedRateLimiter,
        login_guard: LoginGuard,
        presence=None,
        sockets=None,
    ) -> None:
        self._store = store
        self._hasher = hasher
        self._tokens = tokens
        self._clock = clock
        self._by_address = address_limiter
        self._logins = login_guard
        self._changes = KeyedRateLimiter(USER_CHANGE_RATE, clock)
        self._password_changes = KeyedRateLimiter(PASSWORD_CHANGE_RATE, clock)
        self.presence = presence or NoPresence()
        self.sockets = sockets or NoSockets()

    # -- helpers -----------------------------------------------------------

    def view(self, user: UserRecord) -> dict:
        return user_view(user, self.presence.is_online(user.id))

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.seconds(), timezone.utc)

    def _session(self, user: UserRecord) -> dict:
        issued = self._tokens.issue(user.id, user.username, user.role)
        return {"token": issued.token, "expires_at": iso8601(issued.claims.expires_at)}

    def limit_address(self, address: str) -> None:
        """429 when this client address (an IPv6 /64 counts as one) has used up its auth-route budget."""
        wait = self._by_address.take(address_key(address))
        if wait:
            raise errors.rate_limited(wait)

    @staticmethod
    def _limit(limiter: KeyedRateLimiter, key: str) -> None:
        wait = limiter.take(key)
        if wait:
            raise errors.rate_limited(wait)

    async def _refuse_taken(self, username: str | None, email: str | None, user_id: str | None = None) -> None:
        """409 if another account has this username or email. Checked before any password is hashed:
        a taken name must not cost a bcrypt hash (the store's unique index still decides races)."""
        taken = {}
        for field, value in (("username", username), ("email", email)):
            if value is not None:
                other = await self._store.find_user_by_login(value)
                if other is not None and other.id != user_id:
                    taken[field] = "already taken"
        if taken:
            raise errors.conflict(f"That {' and '.join(taken)} {'are' if len(taken) > 1 else 'is'} taken.", taken)

    # -- authentication ----------------------------------------------------

    def authenticate(self, token: str | None) -> Deferred:
        """The principal behind a bearer token; 401 if it is not valid now, 403 if banned.

        Every WebSocket handshake and API call comes through here, and the store usually
        answers from its cache at once, so this is chained callbacks rather than a coroutine
        (which would cost more than the checks themselves).
        """
        if not token:
            return fail(errors.unauthorized())
        try:
            claims = self._tokens.verify(token)
        except InvalidToken:
            return fail(errors.unauthorized("The token is invalid or has expired."))
        found = self._store.get_user(claims.sub)
        found.addCallback(self._check_revocation, claims)
        found.addErrback(errors.store_unavailable_as_503)
        return found

    def _check_revocation(self, user, claims):
        # Checked after the (possibly slow) user lookup, so a logout meanwhile is seen.
        revoked = self._store.is_token_revoked(claims.jti)
        revoked.addCallback(self._principal, user, claims)
        return revoked

    @staticmethod
    def _principal(revoked: bool, user, claims) -> Principal:
        if user is None or revoked or claims.iat < user.tokens_valid_after:
            raise errors.unauthorized("The token has been revoked.")
        if user.banned:
            raise errors.forbidden("This account is banned.")
        return Principal(user, claims)

    # -- auth routes -------------------------------------------------------

    @errors.store_errors_as_503
    async def register(self, body: dict, address: str = "") -> dict:
        form = validation.registration(body)
        await self._refuse_taken(form.username, form.email)
        password_hash = await self._hasher.hash(form.password, address_key(address))
        try:
            user = await self._store.create_user(form.username, form.email, password_hash, self._now())
        except DuplicateKey as e:
            raise errors.conflict(f"That {e.field} is taken.", {e.field: "already taken"}) from None
        self._log.info("registered user {user_id} ({role})", user_id=user.id, role=user.role)
        return {"user": self.view(user), **self._session(user)}

    @errors.store_errors_as_503
    async def login(self, body: dict, address: str = "") -> dict:
        form = validation.login(body)
        key = address_key(address)
        user = await self._store.find_user_by_login(form.login)
        account = user.id if user is not None else "login:" + form.login.casefold()
        self._logins.check(account, key)
        matches = await self._hasher.verify(form.password, user.password_hash if user else None, key)
        if user is None or not matches:
            self._logins.failed(account, key)
            raise errors.unauthorized("Wrong username, email or password.")
        self._logins.succeeded(account, key)
        if user.banned:
            raise errors.forbidden("This account is banned" + (f": {user.ban_reason}" if user.ban_reason else "."))
        return {"user": self.view(user), **self._session(user)}

    def refresh(self, principal: Principal) -> dict:
        return self._session(principal.user)

    @errors.store_errors_as_503
    async def logout(self, principal: Principal) -> None:
        await self._store.revoke_token(principal.claims.jti, principal.claims.expires_at)
        self.sockets.close_token(principal.claims.jti, CLOSE_REVOKED)

    # -- users resource ----------------------------------------------------

    @errors.store_errors_as_503
    async def list_users(self, limit: int, after: str | None, online_only: bool) -> dict:
        ids = self.presence.online_user_ids() if online_only else None
        users = await self._store.list_users(limit, after, ids)
        next_after = users[-1].id if len(users) == limit else None
        return {"users": [self.view(user) for user in users], "next": next_after}

    @errors.store_errors_as_503
    async def get_user(self, user_id: str) -> dict:
        user = await self._store.get_user(user_id)
        if user is None:
            raise errors.not_found("No such user.")
        return self.view(user)

    async def _target(self, principal: Principal, user_id: str) -> UserRecord:
        """The user ``principal`` may change: themselves, or anyone for an admin."""
        if principal.user.id != user_id and not principal.is_admin:
            raise errors.forbidden("Only the user themselves or an admin may do this.")
        user = await self._store.get_user(user_id)
        if user is None:
            raise errors.not_found("No such user.")
        return user

    @errors.store_errors_as_503
    async def update_user(self, principal: Principal, user_id: str, body: dict, address: str = "") -> dict:
        requested = validation.user_changes(body)
        target = await self._target(principal, user_id)
        # Values equal to the current ones change nothing, and write nothing to the change feed.
        changes = {name: value for name, value in requested.items()
                   if name == "password" or getattr(target, name) != value}
        if "role" in changes and not principal.is_admin:
            raise errors.forbidden("Only an admin may change a role.")
        if changes:
            self._limit(self._changes, user_id)
            await self._refuse_taken(changes.get("username"), changes.get("email"), user_id)
        if "password" in changes:
            self._limit(self._password_changes, user_id)
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
            self.sockets.close_user(user_id, CLOSE_REVOKED)
        return self.view(user)

    async def _show_author_as(self, user_id: str, username: str) -> None:
        """Open sockets and every stored message of ``user_id`` show ``username`` from now on, so the
        old name, which anyone may now register, never stands for what this user wrote."""
        self.sockets.renamed(user_id, username)
        await self._store.rename_author(user_id, username)

    @errors.store_errors_as_503
    async def delete_user(self, principal: Principal, user_id: str) -> None:
        await self._target(principal, user_id)
        try:
            deleted = await self._store.delete_user(user_id)
        except LastAdmin:
            raise errors.forbidden("The last admin cannot be deleted.") from None
        if not deleted:
            raise errors.not_found("No such user.")
        self.sockets.close_user(user_id, CLOSE_REVOKED)
        await self._show_author_as(user_id, DELETED_AUTHOR)
        self._log.info("deleted user {user_id}", user_id=user_id)

    # -- moderation ----------------------------------------------------------

    @errors.store_errors_as_503
    async def ban(self, principal: Principal, user_id: str, reason: str | None) -> None:
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
        self.sockets.close_user(user_id, CLOSE_BANNED)
        self._log.info("user {user_id} banned by {admin}", user_id=user_id, admin=principal.user.id)

    @errors.store_errors_as_503
    async def unban(self, principal: Principal, user_id: str) -> None:
        await self._moderated(principal, user_id)
        if await self._store.update_user(user_id, {"banned": False, "ban_reason": None}) is None:
            raise errors.not_found("No such user.")
        self._log.info("user {user_id} unbanned by {admin}", user_id=user_id, admin=principal.user.id)

    async def _moderated(self, principal: Principal, user_id: str) -> UserRecord:
        if not principal.is_admin:
            raise errors.forbidden("Only an admin may ban or unban.")
        user = await self._store.get_user(user_id)
        if user is None:
            raise errors.not_found("No such user.")
        return user
