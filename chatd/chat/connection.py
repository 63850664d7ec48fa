"""A socket as the chat sees it: the contract the edge implements, and the state the chat keeps.

The edge (``chatd.web.ws``, or a fake in the tests) provides an
:class:`IChatConnection`; the chat answers through it and nothing else. What
the chat decides per socket (who it belongs to, its token, its frame budget,
its queue of frames, its expiry timer) lives in a :class:`ChatSocket` that the
chat creates when the socket opens and hands back to the edge as an opaque
handle, never in attributes set on the edge's objects.
"""

from __future__ import annotations

from collections import deque

from zope.interface import Interface

from chatd.chat.frames import FrameError
from chatd.ratelimit import TokenBucket


class IChatConnection(Interface):
    """One open WebSocket, as the chat writes to it (as Twisted Words' ``IChatClient``)."""

    def send(payload, droppable=False):
        """Send one frame (JSON bytes). ``droppable`` frames (typing, read) may be dropped for a slow reader."""

    def send_prepared(prepared, droppable=False):
        """Send a frame framed once for many sockets (see ``chatd.web.ws.prepare``)."""

    def send_prepared_together(prepared_messages):
        """Send several prepared frames in one write (a message and its ack, say)."""

    def close(code, reason):
        """Close the socket with a WebSocket close code (4001, 4003, 4008, 1008...) and a short reason."""

    def going_away():
        """Close with 1001: the server is stopping, and clients may reconnect at once."""


class ChatSocket:
    """What the chat keeps about one open socket.

    The connection's methods are bound onto it once, so delivery to a room's
    sockets costs no more than calling the connection itself.
    """

    __slots__ = ("conn", "send", "send_prepared", "send_prepared_together", "close", "going_away",
                 "user_id", "username", "jti", "expires_at", "issued_at",
                 "bucket", "strikes", "inbox", "handling", "gone", "expiry")

    def __init__(self, conn, principal, bucket: TokenBucket) -> None:
        self.conn = conn
        self.send = conn.send
        self.send_prepared = conn.send_prepared
        self.send_prepared_together = conn.send_prepared_together
        self.close = conn.close
        self.going_away = conn.going_away
        self.user_id: str = principal.user.id
        self.username: str = principal.user.username
        self.jti: str = principal.claims.jti
        self.expires_at: float = principal.claims.exp  # epoch seconds
        self.issued_at: float = principal.claims.iat
        self.bucket = bucket  # frames per socket (--socket-rate)
        self.strikes = 0  # frames refused in a row by the rate limit
        self.inbox: deque = deque()  # frames waiting for the one before them
        self.handling = False  # a frame is being handled (maybe awaiting the store)
        self.gone = False  # closed: queued frames and waiting handlers stop
        self.expiry = None  # the timer that closes the socket when its token expires

    def __repr__(self) -> str:
        return f"<ChatSocket {self.username} {id(self):#x}>"


def require_joined(registry, sock: ChatSocket, room: str, ref: str | None = None) -> None:
    """``not_in_room`` unless ``sock`` has joined ``room`` (SPEC.md, Details: Frames in error)."""
    if not registry.has_joined(sock, room):
        raise FrameError("not_in_room", f"join {room} first", ref)
