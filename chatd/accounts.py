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

from chatd import errors, validation
from chatd.ratelimit import KeyedRateLimiter
from chatd.storage.records import DuplicateKey, UserRecord
from chatd.tokens import Claims, InvalidToken, TokenIssuer
from chatd.views import iso8601, user_view

# WebSocket close codes from SPEC.md.
CLOSE_REVOKED = 4001
CLOSE_BANNED = 4003


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
        account_limiter: KeyedRateLimiter,
        presence=None,
        sockets=None,
    ) -> None:
        self._store = store
        self._hasher = hasher
        self._tokens = tokens
        self._clock = clock
        self._by_address = address_limiter
        self._by_account = account_limiter
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
        """429 when this client address has used up its auth-route budget."""
        wait = self._by_address.take(address)
        if wait:
            raise errors.rate_limited(wait)

    def _limit_account(self, login: str) -> None:
        """429 while this account name has used up its budget of failed attempts."""
        wait = self._by_account.wait(login.casefold())
        if wait:
            raise errors.rate_limited(wait)

    def _count_failure(self, login: str) -> None:
        # Only failures count against an account: a stranger sending requests in someone's name
        # spends their own address's budget, not that person's ability to log in.
        self._by_account.take(login.casefold())

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
    async def register(self, body: dict) -> dict:
        form = validation.registration(body)
        self._limit_account(form.username)
        password_hash = await self._hasher.hash(form.password)
        try:
            user = await self._store.create_user(form.username, form.email, password_hash, self._now())
        except DuplicateKey as e:
            self._count_failure(form.username)
            raise errors.conflict(f"That {e.field} is taken.", {e.field: "already taken"}) from None
        self._log.info("registered user {user_id} ({role})", user_id=user.id, role=user.role)
        return {"user": self.view(user), **self._session(user)}

    @errors.store_errors_as_503
    async def login(self, body: dict) -> dict:
        form = validation.login(body)
        self._limit_account(form.login)
        user = await self._store.find_user_by_login(form.login)
        matches = await self._hasher.verify(form.password, user.password_hash if user else None)
        if user is None or not matches:
            self._count_failure(form.login)
            raise errors.unauthorized("Wrong username, email or password.")
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
    async def update_user(self, principal: Principal, user_id: str, body: dict) -> dict:
        changes = validation.user_changes(body)
        target = await self._target(principal, user_id)
        if "role" in changes and changes["role"] != target.role:
            if not principal.is_admin:
                raise errors.forbidden("Only an admin may change a role.")
            if target.role == "admin" and await self._store.count_admins() <= 1:
                raise errors.forbidden("The last admin cannot give up the role.")
        if "password" in changes:
            changes["password_hash"] = await self._hasher.hash(changes.pop("password"))
            # Every token issued before now stops working, this request's included.
            changes["tokens_valid_after"] = self._clock.seconds()
        try:
            user = await self._store.update_user(user_id, changes)
        except DuplicateKey as e:
            raise errors.conflict(f"That {e.field} is taken.", {e.field: "already taken"}) from None
        if user is None:
            raise errors.not_found("No such user.")
        if "tokens_valid_after" in changes:
            if principal.user.id == user_id:
                # Revoked by jti too: a token issued in the same instant as the change passes the time check.
                await self._store.revoke_token(principal.claims.jti, principal.claims.expires_at)
            self.sockets.close_user(user_id, CLOSE_REVOKED)
        return self.view(user)

    @errors.store_errors_as_503
    async def delete_user(self, principal: Principal, user_id: str) -> None:
        target = await self._target(principal, user_id)
        if target.role == "admin" and await self._store.count_admins() <= 1:
            raise errors.forbidden("The last admin cannot be deleted.")
        if not await self._store.delete_user(user_id):
            raise errors.not_found("No such user.")
        self.sockets.close_user(user_id, CLOSE_REVOKED)
        self._log.info("deleted user {user_id}", user_id=user_id)

    # -- moderation ----------------------------------------------------------

    @errors.store_errors_as_503
    async def ban(self, principal: Principal, user_id: str, reason: str | None) -> None:
        """Ban a user (admin only): their tokens stop working and their sockets close with 4003."""
        target = await self._moderated(principal, user_id)
        if target.id == principal.user.id:
            raise errors.forbidden("You cannot ban yourself.")
        if target.role == "admin" and not target.banned and await self._store.count_admins() <= 1:
            raise errors.forbidden("The last admin cannot be banned.")
        if await self._store.update_user(user_id, {"banned": True, "ban_reason": reason}) is None:
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
