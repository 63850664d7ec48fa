"""The chat rules for live sockets (SPEC.md, WebSocket, Guarantees and Details).

``ChatService`` is told when a socket opens and closes and what it sends; it
answers through the connection's ``send``/``send_prepared``/``close``. It
knows nothing of Autobahn (``chatd.web.ws`` adapts) or of txmongo (the store
interface). It also serves ``Accounts`` as its ``presence`` and ``sockets``.

A connection provides ``user_id``, ``username``, ``jti``, ``expires_at``
(epoch seconds) and ``send(payload, droppable=False)``,
``send_prepared(prepared, droppable=False)``, ``send_prepared_together(prepared_list)``
(several frames in one write) and ``close(code, reason)``.
"""

from __future__ import annotations

import inspect
from collections import deque
from datetime import datetime, timezone

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from chatd import errors
from chatd.chat import frames
from chatd.accounts.auth import CLOSE_BANNED, CLOSE_REVOKED, DELETED_AUTHOR, Accounts
from chatd.chat.history import History
from chatd.metrics import Metrics
from chatd.ratelimit import Rate, TokenBucket
from chatd.chat.receipts import ReadReceipts
from chatd.chat.registry import Registry
from chatd.chat.roomstate import RoomBook
from chatd.storage.records import StoreUnavailable
from chatd.views import iso8601
from chatd.chat.writer import MessageWriter

CLOSE_POLICY = 1008
CLOSE_SLOW_CONSUMER = 4008
MAX_ROOMS_PER_USER = 500


class ChatService:
    """The socket side of chat: what each frame does, who receives what, when a socket closes."""

    _log = Logger()

    def __init__(self, store, accounts: Accounts, registry: Registry, rooms: RoomBook, writer: MessageWriter,
                 history: History, clock, socket_rate: Rate, prepare=lambda payload: payload,
                 metrics: Metrics | None = None, receipts: ReadReceipts | None = None,
                 max_rooms: int = MAX_ROOMS_PER_USER) -> None:
        self._store = store
        self._accounts = accounts
        self.registry = registry
        self._rooms = rooms
        self._writer = writer
        self._history = history
        self._clock = clock
        self._socket_rate = socket_rate
        self._prepare = prepare  # frames a payload once for many sockets
        self._expiry: dict = {}
        self.metrics = metrics or Metrics()
        self._receipts = receipts or ReadReceipts(store, clock)
        self._max_rooms = max_rooms
        self.slow_consumers = 0  # sockets closed for not reading (4008)
        self.peak_outbox = 0  # the largest backlog any socket has had, in bytes
        # Frame type → (handler, whether it awaits the store): looked up once per frame.
        self._handlers = {
            kind: (handler, inspect.iscoroutinefunction(handler))
            for kind in (frames.Join, frames.Leave, frames.Send, frames.Typing, frames.Read, frames.Refresh, frames.Ping)
            for handler in [getattr(self, "_on_" + kind.__name__.lower())]
        }
        writer.on_stored = self._broadcast_stored
        accounts.presence = registry  # who is online: the registry knows
        accounts.sockets = self

    # -- delivery ----------------------------------------------------------

    def deliver(self, room: str, payload: bytes, droppable: bool = False, skip_user: str | None = None) -> None:
        """Send one frame to every socket that joined ``room`` (but ``skip_user``'s)."""
        targets = self.registry.subscribers(room)
        if not targets:
            return
        prepared = self._prepare(payload)
        for conn in list(targets):
            if conn.user_id != skip_user:
                conn.send_prepared(prepared, droppable)

    def _broadcast_stored(self, entry, origin) -> None:
        """A new message to everyone in the room; its sender gets its copy and ack in one write."""
        message = entry.message
        prepared = self._prepare(frames.message_frame(entry.body))
        targets = list(self.registry.subscribers(message.room))
        for conn in targets:
            if conn is not origin:
                conn.send_prepared(prepared)
        if origin is not None:
            ack = self._prepare(frames.ack_frame(message, message.client_id))
            joined = self.registry.has_joined(origin, message.room)
            origin.send_prepared_together((prepared, ack) if joined else (ack,))
        self.metrics.messages_stored.inc()
        self.metrics.messages_delivered.inc(len(targets))

    def slow_consumer(self, conn) -> None:
        """``conn`` stopped reading and its backlog passed the bound: it is closed with 4008."""
        self.slow_consumers += 1
        self.metrics.slow_consumers.inc()
        conn.close(CLOSE_SLOW_CONSUMER, "slow consumer")

    def _presence(self, room: str, username: str, event: str, user_id: str) -> None:
        payload = frames.encode({"type": "presence", "room": room, "user": username, "event": event})
        self.deliver(room, payload, droppable=False, skip_user=user_id)

    # -- connection lifecycle ----------------------------------------------

    def opened(self, conn, principal) -> None:
        """A socket passed the handshake: register it, announce the user, say hello."""
        conn.bucket = TokenBucket(self._socket_rate, self._clock.seconds())
        conn.inbox = deque()
        conn.handling = False
        conn.gone = False
        conn.strikes = 0  # frames refused in a row by the rate limit
        if self.registry.connect(conn, principal.user.rooms):
            for room in principal.user.rooms:
                self._presence(room, conn.username, "online", conn.user_id)
        self._arm_expiry(conn)
        conn.send(frames.encode({
            "type": "hello",
            "user": self._accounts.view(principal.user),
            "server_time": iso8601(datetime.fromtimestamp(self._clock.seconds(), timezone.utc)),
        }))

    def closed(self, conn) -> None:
        """A socket closed: forget it, and tell its rooms if it was its user's last."""
        conn.gone = True  # frames still queued, or handlers waiting on the store, stop here
        conn.inbox.clear()
        timer = self._expiry.pop(conn, None)
        if timer is not None and timer.active():
            timer.cancel()
        rooms = self.registry.disconnect(conn)
        for room in rooms or ():
            self._presence(room, conn.username, "offline", conn.user_id)

    def _arm_expiry(self, conn) -> None:
        timer = self._expiry.pop(conn, None)
        if timer is not None and timer.active():
            timer.cancel()
        delay = max(0.0, conn.expires_at - self._clock.seconds())
        self._expiry[conn] = self._clock.callLater(delay, conn.close, CLOSE_REVOKED, "token expired")

    # -- Accounts' sockets -------------------------------------------------

    def close_token(self, jti: str, code: int) -> None:
        for conn in self.registry.connections_with_token(jti):
            conn.close(code, "token revoked")

    def close_all(self) -> None:
        """Close every socket with 1001 (going away): the server is stopping; clients reconnect."""
        for conn in self.registry.connections():
            conn.going_away()

    def close_user(self, user_id: str, code: int) -> None:
        reason = "banned" if code == CLOSE_BANNED else "token revoked"
        for conn in self.registry.connections_of(user_id):
            conn.close(code, reason)

    def renamed(self, user_id: str, username: str) -> None:
        """A user's name changed (or they were deleted): their sockets and cached messages show the new one."""
        self.registry.rename(user_id, username)
        self._rooms.rename_author(user_id, username)

    # -- changes seen by polling the store (other processes, the admin CLI) --

    def changed(self, revoked_jtis: list[str], user_ids: list[str]) -> None:
        for jti in revoked_jtis:
            self.close_token(jti, CLOSE_REVOKED)
        if user_ids:
            ensureDeferred(self._recheck(user_ids)).addErrback(
                lambda failure: self._log.failure("re-checking changed users", failure))

    async def _recheck(self, user_ids: list[str]) -> None:
        """Apply changes made elsewhere: a new name shows on sockets and cached messages here, and
        sockets a user may no longer keep (deleted, banned, older than a password change) close."""
        try:
            users = {user.id: user for user in await self._store.get_users(user_ids)}
        except StoreUnavailable:
            return  # the handshake checks again on reconnect; the next change is seen at the next poll
        stale = {}
        for user_id in user_ids:
            user = users.get(user_id)
            name = user.username if user is not None else DELETED_AUTHOR
            sockets = self.registry.connections_of(user_id)
            if any(conn.username != name for conn in sockets):
                stale[user_id] = name
            self.renamed(user_id, name)
            if user is None:
                self.close_user(user_id, CLOSE_REVOKED)
            elif user.banned:
                self.close_user(user_id, CLOSE_BANNED)
            else:
                for conn in sockets:
                    if conn.issued_at < user.tokens_valid_after:
                        conn.close(CLOSE_REVOKED, "token revoked")
        for user_id, name in stale.items():
            # Sockets here kept the old name until now: what they sent meanwhile is renamed too.
            try:
                await self._store.rename_author(user_id, name)
            except StoreUnavailable:
                self._log.warn("could not rename the messages of user {user_id}; renaming them again repairs it",
                               user_id=user_id)

    # -- frames ------------------------------------------------------------

    def received(self, conn, payload: bytes, is_binary: bool) -> Deferred | None:
        """Handle one frame from ``conn``; errors are answered on the socket."""
        if not self._allowed(conn):
            return None
        try:
            frame = frames.parse(payload, is_binary)
        except frames.FrameError as e:
            conn.send(frames.error_frame(e.code, e.message, e.ref))
            return None
        handler, awaits = self._handlers[type(frame)]
        if not conn.handling and not awaits:
            # The common frames (message, typing, ping) need no store round trip of their
            # own: handled at once, without a coroutine, when nothing is queued before them.
            try:
                handler(conn, frame)
            except Exception as e:
                self._refuse(conn, e, getattr(frame, "client_id", None))
            return None
        conn.inbox.append((handler, frame))
        if conn.handling:
            return None
        return Deferred.fromCoroutine(self._drain(conn))

    async def _drain(self, conn) -> None:
        """Handle a socket's frames one after another, so a frame sees its predecessors' effects
        (a message right after its join). Sending does not wait for the store: the ack follows."""
        conn.handling = True
        try:
            while conn.inbox:
                handler, frame = conn.inbox.popleft()
                await self._run(handler, conn, frame)
        finally:
            conn.handling = False

    def control_frame_allowed(self, conn) -> bool:
        """Whether a WebSocket ping (or pong) from ``conn`` may be handled.

        Control frames cost the same budget as data frames (``--socket-rate``): one
        over the limit is dropped unanswered, refused as a data frame would be, and
        persistent flooding closes the socket with 1008.
        """
        return self._allowed(conn)

    def _allowed(self, conn) -> bool:
        """The per-socket rate limit; persistent flooding closes the socket with 1008."""
        if conn.bucket.take(self._clock.seconds()) == 0:
            conn.strikes = 0
            return True
        strikes = conn.strikes = conn.strikes + 1
        self.metrics.rate_limited.labels("socket").inc()
        if strikes > max(10, self._socket_rate.burst):
            conn.close(CLOSE_POLICY, "flooding")
        elif strikes == 1 or strikes % 10 == 0:
            conn.send(frames.error_frame("rate_limited", "Too many frames; slow down."))
        return False

    async def _run(self, handler, conn, frame) -> None:
        """Run a frame handler, answering any refusal or failure with an error frame."""
        try:
            result = handler(conn, frame)
            if result is not None:  # a coroutine: the handler awaits the store
                await result
        except Exception as e:
            self._refuse(conn, e, getattr(frame, "client_id", None))

    def _refuse(self, conn, error: Exception, ref: str | None) -> None:
        if isinstance(error, frames.FrameError):
            conn.send(frames.error_frame(error.code, error.message, error.ref or ref))
        elif isinstance(error, StoreUnavailable):
            conn.send(frames.error_frame("unavailable", "The store is unreachable; try again.", ref))
        elif isinstance(error, errors.ApiError):
            conn.send(frames.error_frame(error.code, error.message, ref))
        else:
            self._log.failure("frame handler failed", failure=Failure(error))
            conn.send(frames.error_frame("internal", "Something went wrong on our side.", ref))

    def _require_joined(self, conn, room: str, ref: str | None = None) -> None:
        if not self.registry.has_joined(conn, room):
            raise frames.FrameError("not_in_room", f"join {room} first", ref)

    def _on_ping(self, conn, frame) -> None:
        conn.send(frames.PONG)

    async def _on_join(self, conn, frame: frames.Join) -> None:
        state = await self._rooms.current(frame.room)
        state.busy += 1  # keep this state (and its cache) while the join awaits the store
        try:
            if not self.registry.is_member(conn.user_id, frame.room):
                if self.registry.member_room_count(conn.user_id) >= self._max_rooms:
                    self.metrics.refused("rooms_per_user")
                    raise frames.FrameError(
                        "forbidden", f"You are a member of {self._max_rooms} rooms, the most allowed; leave one first.")
                joined_at = datetime.fromtimestamp(self._clock.seconds(), timezone.utc)
                if await self._store.add_membership(frame.room, conn.user_id, joined_at, state.last_seq):
                    self._presence(frame.room, conn.username, "join", conn.user_id)
                self.registry.became_member(conn.user_id, frame.room)
            history, upto, truncated = await self._history.for_join(state, frame.since)
            while not truncated and upto < state.last_seq and not conn.gone:
                # Messages were stored while the history was read. The cache has them unless it
                # was reset meanwhile; then they are read too, until nothing is missing.
                tail = state.cached(upto, state.last_seq)
                if tail is not None:
                    history += [entry.body for entry in tail]
                    break
                last = state.last_seq
                history += await self._history.bodies(state, upto, last)
                upto = last
        finally:
            state.busy -= 1
        if conn.gone:
            return
        # No await from the last check to here: from now on the socket receives the room live.
        self.registry.subscribe(conn, frame.room)
        conn.send(frames.joined_frame(frame.room, self.registry.online_members(frame.room), history, truncated))

    async def _on_leave(self, conn, frame: frames.Leave) -> None:
        self._require_joined(conn, frame.room)
        await self._store.remove_membership(frame.room, conn.user_id)
        self.registry.stopped_being_member(conn.user_id, frame.room)
        left = frames.encode({"type": "left", "room": frame.room})
        for own in self.registry.connections_of(conn.user_id):
            if self.registry.has_joined(own, frame.room):
                self.registry.unsubscribe(own, frame.room)
                own.send(left)
        self._presence(frame.room, conn.username, "leave", conn.user_id)

    def _on_send(self, conn, frame: frames.Send) -> None:
        self._require_joined(conn, frame.room, frame.client_id)
        arrived = self._clock.seconds()
        stored = self._writer.submit(frame.room, conn.user_id, conn.username, frame.text, frame.client_id,
                                     origin=conn)
        stored.addCallbacks(
            # A new message's ack went out with its broadcast; a resend is acked here.
            lambda result: self._acked(conn, frame, result, arrived),
            lambda failure: self._refuse(conn, failure.value, frame.client_id),
        )

    def _acked(self, conn, frame: frames.Send, result, arrived: float) -> None:
        message, resent = result
        if resent:
            conn.send(frames.ack_frame(message, frame.client_id))
        else:
            self.metrics.delivery_latency.observe(self._clock.seconds() - arrived)

    def _on_typing(self, conn, frame: frames.Typing) -> None:
        self._require_joined(conn, frame.room)
        payload = frames.encode({"type": "typing", "room": frame.room, "user": conn.username, "typing": frame.typing})
        self.deliver(frame.room, payload, droppable=True, skip_user=conn.user_id)

    async def _on_read(self, conn, frame: frames.Read) -> None:
        self._require_joined(conn, frame.room)
        state = await self._rooms.get(frame.room)
        seq = min(frame.seq, state.last_seq)
        if self._receipts.mark(frame.room, conn.user_id, seq):  # stored within a second, with the next ones
            payload = frames.encode({"type": "read", "room": frame.room, "user": conn.username, "seq": seq})
            self.deliver(frame.room, payload, droppable=True, skip_user=conn.user_id)

    async def _on_refresh(self, conn, frame: frames.Refresh) -> None:
        try:
            principal = await self._accounts.authenticate(frame.token)
        except errors.ApiError as e:
            if e.status == 503:
                raise
            raise frames.FrameError("forbidden", "That token is not valid.") from None
        if conn.gone:
            return  # closed meanwhile: nothing to extend
        if principal.user.id != conn.user_id:
            raise frames.FrameError("forbidden", "That token belongs to another user.")
        self.registry.retoken(conn, principal.claims.jti)
        conn.expires_at = principal.claims.exp
        conn.issued_at = principal.claims.iat
        self._arm_expiry(conn)
        conn.send(frames.encode({"type": "refreshed", "expires_at": iso8601(principal.claims.expires_at)}))
