"""Signing in and out: registration, login, token refresh and logout, and who a token belongs to.

This is the domain of SPEC.md's ``/api/auth`` routes. It decides; the Klein
routes only translate HTTP to these calls, and the store only stores. Every
WebSocket handshake and API call is authenticated here.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger

from chatd import errors
from chatd.accounts import validation
from chatd.accounts.loginguard import LoginGuard
from chatd.accounts.tokens import Claims, InvalidToken, TokenIssuer
from chatd.accounts.users import refuse_taken
from chatd.accounts.views import user_view
from chatd.ratelimit import KeyedRateLimiter, address_key
from chatd.storage.records import DuplicateKey, UserRecord
from chatd.times import iso8601, utc_from


@dataclass(frozen=True)
class Principal:
    """Who is making a request: the verified token and the current user record."""

    user: UserRecord
    claims: Claims

    @property
    def is_admin(self) -> bool:
        return self.user.role == "admin"


class Auth:
    """The rules of SPEC.md's auth routes, and token checks for everything else.

    ``presence`` answers who is online (the chat's registry); ``events`` takes
    a logout to the sockets of the revoked token (``chatd.chat.events``).
    """

    _log = Logger()

    def __init__(self, store, hasher, tokens: TokenIssuer, clock, address_limiter: KeyedRateLimiter,
                 login_guard: LoginGuard, presence, events) -> None:
        self._store = store
        self._hasher = hasher
        self._tokens = tokens
        self._clock = clock
        self._by_address = address_limiter
        self._logins = login_guard
        self._presence = presence
        self._events = events

    def _session(self, user: UserRecord) -> dict:
        issued = self._tokens.issue(user.id, user.username, user.role)
        return {"token": issued.token, "expires_at": iso8601(issued.claims.expires_at)}

    def limit_address(self, address: str) -> None:
        """429 when this client address (an IPv6 /64 counts as one) has used up its auth-route budget."""
        wait = self._by_address.take(address_key(address))
        if wait:
            raise errors.rate_limited(wait)

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

    async def register(self, body: dict, address: str = "") -> dict:
        form = validation.registration(body)
        await refuse_taken(self._store, form.username, form.email)
        password_hash = await self._hasher.hash(form.password, address_key(address))
        try:
            user = await self._store.create_user(form.username, form.email, password_hash, utc_from(self._clock.seconds()))
        except DuplicateKey as e:
            raise errors.conflict(f"That {e.field} is taken.", {e.field: "already taken"}) from None
        self._log.info("registered user {user_id} ({role})", user_id=user.id, role=user.role)
        return {"user": user_view(user, self._presence.is_online(user.id)), **self._session(user)}

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
        return {"user": user_view(user, self._presence.is_online(user.id)), **self._session(user)}

    def refresh(self, principal: Principal) -> dict:
        return self._session(principal.user)

    async def logout(self, principal: Principal) -> None:
        await self._store.revoke_token(principal.claims.jti, principal.claims.expires_at)
        self._events.token_revoked(principal.claims.jti)
