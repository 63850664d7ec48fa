"""A store that remembers users for a few seconds and every revoked token.

Every socket handshake and API call checks its token's user and revocation,
and each store round trip costs far more than the rest of a handshake. So
users are cached for ``ttl`` seconds, and the revoked tokens (few, and
forgotten once they would have expired anyway) are all kept in memory, as
:class:`chatd.storage.changes.ChangePoller` learns them from the store. Every
write made through this process updates the cache at once, so a logout, ban,
deletion or password change here takes effect immediately; changes made
elsewhere (another chatd on the same store, the admin CLI) are seen within
``ttl`` seconds, or at the poller's next turn (2 s).
"""

from __future__ import annotations

from collections import OrderedDict

from twisted.internet.defer import Deferred, ensureDeferred, succeed
from zope.interface import implementer

from chatd.storage.interface import IStore
from chatd.storage.util import returns_deferred


class _Expiring:
    """A bounded map whose entries are forgotten ``ttl`` seconds after they were stored."""

    def __init__(self, clock, ttl: float, size: int) -> None:
        self._clock = clock
        self._ttl = ttl
        self._size = size
        self._entries: OrderedDict = OrderedDict()

    def get(self, key):
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, stored_at = entry
        if self._clock.seconds() - stored_at > self._ttl:
            del self._entries[key]
            return None
        return value

    def put(self, key, value) -> None:
        self._entries[key] = (value, self._clock.seconds())
        self._entries.move_to_end(key)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def drop(self, key) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


_ABSENT = object()  # a cached "no such user"


@implementer(IStore)
class CachedStore:
    """Wraps an IStore; everything not cached here is passed through unchanged."""

    def __init__(self, store, clock, ttl: float = 10.0, size: int = 100_000) -> None:
        self._store = store
        self._clock = clock
        self._users = _Expiring(clock, ttl, size)
        self._named = _Expiring(clock, ttl, size)  # lower-cased username -> user id (or _ABSENT)
        self._revoked: dict[str, float] = {}  # jti → when the token would expire anyway
        self._loaded = False  # until the first full load, revocations are asked of the store
        self._wanted: dict[str, list] = {}
        self._fetch_call = None
        # Bumped whenever a user's record changes through here: a read that started before
        # the change must not put the old record back into the cache when it returns.
        self._changes = 0

    def __getattr__(self, name):
        return getattr(self._store, name)

    # -- what the change feed tells (chatd.storage.changes) ---------------------

    def learn_revocations(self, found: list[tuple[str, float]], now: float, complete: bool) -> list[str]:
        """Remember revoked tokens ``[(jti, expires)]``; forget those that expired anyway. With
        ``complete``, every revocation is now known (a token not listed is not revoked).
        Answers the jtis that were new here."""
        new = [jti for jti, _ in found if jti not in self._revoked]
        for jti, expires in found:
            self._revoked[jti] = expires
        for jti in [jti for jti, expires in self._revoked.items() if expires < now]:
            del self._revoked[jti]
        self._loaded = self._loaded or complete
        return new

    def forget_user(self, user_id: str) -> None:
        """Drop a cached user (their record changed somewhere else)."""
        self._changes += 1
        self._users.drop(user_id)
        self._named.clear()  # a rename frees one name and takes another: which ones is not known here

    # -- cached reads -------------------------------------------------------

    def get_user(self, user_id):
        cached = self._users.get(user_id)
        if cached is not None:
            return succeed(None if cached is _ABSENT else cached)
        # Misses in one reactor turn are fetched together: a wave of handshakes (say, every
        # client reconnecting after a restart) costs one store round trip, not one each.
        waiter: Deferred = Deferred()
        self._wanted.setdefault(user_id, []).append(waiter)
        if self._fetch_call is None:
            self._fetch_call = self._clock.callLater(0, lambda: ensureDeferred(self._fetch_users()))
        return waiter

    async def _fetch_users(self) -> None:
        wanted, self._wanted, self._fetch_call = self._wanted, {}, None
        changes = self._changes
        try:
            found = {user.id: user for user in await self._store.get_users(list(wanted))}
        except Exception as e:
            for waiters in wanted.values():
                for waiter in waiters:
                    waiter.errback(e)
            return
        for user_id, waiters in wanted.items():
            user = found.get(user_id)
            if changes == self._changes:
                self._users.put(user_id, _ABSENT if user is None else user)
            for waiter in waiters:
                waiter.callback(user)

    # Users read for other reasons are cached too: a client that has just registered or
    # logged in opens its WebSocket next, and its handshake then needs no store round trip.

    @returns_deferred
    async def create_user(self, username, email, password_hash, created_at):
        user = await self._store.create_user(username, email, password_hash, created_at)
        self._users.put(user.id, user)
        return user

    @returns_deferred
    async def find_user_by_login(self, login):
        changes = self._changes
        user = await self._store.find_user_by_login(login)
        if user is not None and changes == self._changes:
            self._users.put(user.id, user)
        return user

    @returns_deferred
    async def user_named(self, name: str):
        """The user whose username is ``name`` (any case), or None: mentions ask this for every ``@name``.

        Not for logins, which ask the store. Any user change known here empties the names (a rename frees
        a name and takes another), so a mention never finds a user by a name they gave up after that."""
        key = name.lower()
        cached = self._named.get(key)
        if cached is _ABSENT:
            return None
        if cached is not None:
            user = await self.get_user(cached)
            if user is not None and user.username.lower() == key:
                return user
        changes = self._changes
        user = await self._store.find_user_by_login(name)
        if user is not None and user.username.lower() != key:
            user = None  # find_user_by_login also matches emails; a name (no "@") never equals one
        if changes == self._changes:
            self._named.put(key, _ABSENT if user is None else user.id)
            if user is not None:
                self._users.put(user.id, user)
        return user

    def is_token_revoked(self, jti):
        if jti in self._revoked:
            return succeed(True)
        if self._loaded:
            return succeed(False)
        return self._store.is_token_revoked(jti)

    # -- writes that change what is cached ------------------------------------

    @returns_deferred
    async def revoke_token(self, jti, expires_at):
        await self._store.revoke_token(jti, expires_at)
        self._revoked[jti] = expires_at.timestamp()

    async def _changing_user(self, user_id: str, write):
        """Await a write that changes a user's record, then drop the cached copy (even if it failed)."""
        try:
            return await write
        finally:
            self.forget_user(user_id)

    def update_user(self, user_id, changes):
        return ensureDeferred(self._changing_user(user_id, self._store.update_user(user_id, changes)))

    def delete_user(self, user_id):
        return ensureDeferred(self._changing_user(user_id, self._store.delete_user(user_id)))

    def add_membership(self, room, user_id, joined_at, joined_seq, role="member"):
        return ensureDeferred(self._changing_user(
            user_id, self._store.add_membership(room, user_id, joined_at, joined_seq, role)))

    def remove_membership(self, room, user_id):
        return ensureDeferred(self._changing_user(user_id, self._store.remove_membership(room, user_id)))
