"""Sockets opening and closing, their tokens (refresh and expiry), and changes to their users made elsewhere.

A socket lives as long as its token: it is closed with 4001 when the token
expires, unless a ``refresh`` frame hands it a newer token of the same user.
A user's first socket opening makes them ``online`` in their rooms and their
last closing ``offline``. Account changes made by another process or by
``chatd-admin`` arrive from the store's change feed (:meth:`Sessions.changed`)
and close the sockets a user may no longer keep, or rename them.
"""

from __future__ import annotations

from twisted.internet.defer import ensureDeferred
from twisted.logger import Logger

from chatd import errors
from chatd.accounts.users import DELETED_AUTHOR
from chatd.accounts.views import user_view
from chatd.chat import frames
from chatd.chat.connection import ChatSocket
from chatd.chat.events import CLOSE_REVOKED
from chatd.ratelimit import Rate, TokenBucket
from chatd.storage.records import StoreUnavailable
from chatd.times import iso8601, utc_from


class Sessions:
    """Opens, refreshes, expires and closes sockets; applies account changes seen by polling."""

    _log = Logger()

    def __init__(self, store, registry, events, presence, accounts, clock, socket_rate: Rate) -> None:
        self._store = store
        self._registry = registry
        self._events = events
        self._presence = presence  # decides when a user comes online or goes offline (everywhere)
        self._accounts = accounts  # authenticates refresh tokens (chatd.accounts.auth.Auth)
        self._clock = clock
        self._socket_rate = socket_rate

    def opened(self, conn, principal) -> ChatSocket:
        """A socket passed the handshake: its ChatSocket, registered and greeted, its user announced."""
        sock = ChatSocket(conn, principal, TokenBucket(self._socket_rate, self._clock.seconds()))
        if self._registry.connect(sock, principal.user.rooms):
            self._presence.came_online(sock.user_id, sock.username, principal.user.rooms)
        self._arm_expiry(sock)
        sock.send(frames.encode({
            "type": "hello",
            "user": user_view(principal.user, online=True),  # online: this very socket
            "server_time": iso8601(utc_from(self._clock.seconds())),
        }))
        return sock

    def closed(self, sock: ChatSocket) -> None:
        """A socket closed: forget it, and tell its rooms if it was its user's last."""
        sock.gone = True  # frames still queued, or handlers waiting on the store, stop here
        sock.inbox.clear()
        if sock.expiry is not None and sock.expiry.active():
            sock.expiry.cancel()
        rooms = self._registry.disconnect(sock)
        if rooms is not None:
            self._presence.went_offline(sock.user_id, sock.username, rooms)

    def _arm_expiry(self, sock: ChatSocket) -> None:
        if sock.expiry is not None and sock.expiry.active():
            sock.expiry.cancel()
        delay = max(0.0, sock.expires_at - self._clock.seconds())
        sock.expiry = self._clock.callLater(delay, sock.close, CLOSE_REVOKED, "token expired")

    async def refresh(self, sock: ChatSocket, frame: frames.Refresh) -> None:
        """The ``refresh`` frame: the socket now belongs to a newer token of the same user."""
        try:
            principal = await self._accounts.authenticate(frame.token)
        except errors.ApiError as e:
            if e.status == 503:
                raise
            raise frames.FrameError("forbidden", "That token is not valid.") from None
        if sock.gone:
            return  # closed meanwhile: nothing to extend
        if principal.user.id != sock.user_id:
            raise frames.FrameError("forbidden", "That token belongs to another user.")
        self._registry.retoken(sock, principal.claims.jti)
        sock.expires_at = principal.claims.exp
        sock.issued_at = principal.claims.iat
        self._arm_expiry(sock)
        sock.send(frames.encode({"type": "refreshed", "expires_at": iso8601(principal.claims.expires_at)}))

    # -- changes made elsewhere (the store's change feed) ----------------------

    def changed(self, revoked_jtis: list[str], user_ids: list[str]) -> None:
        """Revocations and changed users seen by polling the store (any process, the admin CLI)."""
        for jti in revoked_jtis:
            self._events.token_revoked(jti)
        if user_ids:
            ensureDeferred(self._recheck(user_ids)).addErrback(
                lambda failure: self._log.failure("re-checking changed users", failure))

    async def _recheck(self, user_ids: list[str]) -> None:
        """A new name shows on sockets and cached messages here; sockets a user may no longer keep
        (deleted, banned, older than a password change) close."""
        try:
            users = {user.id: user for user in await self._store.get_users(user_ids)}
        except StoreUnavailable:
            return  # the handshake checks again on reconnect; the next change is seen at the next poll
        stale = {}
        for user_id in user_ids:
            user = users.get(user_id)
            name = user.username if user is not None else DELETED_AUTHOR
            if any(sock.username != name for sock in self._registry.connections_of(user_id)):
                stale[user_id] = name
            self._events.user_renamed(user_id, name)
            if user is None:
                self._events.user_deleted(user_id)
            elif user.banned:
                self._events.user_banned(user_id)
            else:
                self._events.password_changed(user_id, before=user.tokens_valid_after)
        for user_id, name in stale.items():
            # Sockets here kept the old name until now: what they sent meanwhile is renamed too.
            try:
                await self._store.rename_author(user_id, name)
            except StoreUnavailable:
                self._log.warn("could not rename the messages of user {user_id}; renaming them again repairs it",
                               user_id=user_id)
