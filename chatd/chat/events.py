"""Where every room event and every account event goes to reach the sockets that should see it.

Everything that happens in a room (a message stored, edited or deleted,
typing, a read receipt, presence, someone leaving) and everything that happens
to an account (a token revoked, a password changed, a ban, a deletion, a
rename) is told to one :class:`LocalEvents`, which builds the frames and hands
them to this process's sockets. It is the seam for a cross-process bus:
another implementation with the same methods can also publish each event to the
other chatd processes, which then deliver it to theirs.
"""

from __future__ import annotations

from chatd.chat import frames
from chatd.times import iso8601

CLOSE_REVOKED = 4001
CLOSE_BANNED = 4003


class LocalEvents:
    """Delivers events to the sockets of this process (see the module docstring)."""

    def __init__(self, registry, rooms, prepare, metrics) -> None:
        self._registry = registry
        self._rooms = rooms  # cached history, renamed with its authors
        self._prepare = prepare  # frames a payload once for many sockets
        self._metrics = metrics

    def _to_room(self, room: str, payload: bytes, droppable: bool = False, skip_user: str | None = None) -> None:
        """One frame to every socket that joined ``room`` (but ``skip_user``'s)."""
        targets = self._registry.subscribers(room)
        if not targets:
            return
        prepared = self._prepare(payload)
        for sock in list(targets):
            if sock.user_id != skip_user:
                sock.send_prepared(prepared, droppable)

    # -- room events ----------------------------------------------------------

    def message_stored(self, entry, origin) -> None:
        """A new message to everyone in the room; its sender's socket gets its copy and ack in one write."""
        message = entry.message
        prepared = self._prepare(frames.message_frame(entry.body))
        targets = list(self._registry.subscribers(message.room))
        for sock in targets:
            if sock is not origin:
                sock.send_prepared(prepared)
        if origin is not None:
            ack = self._prepare(frames.ack_frame(message, message.client_id))
            joined = self._registry.has_joined(origin, message.room)
            origin.send_prepared_together((prepared, ack) if joined else (ack,))
        self._metrics.messages_stored.inc()
        self._metrics.messages_delivered.inc(len(targets))

    def message_acked(self, message, origin) -> None:
        """Only the sender's ack: the message itself reached the room already (read from the store)."""
        if origin is not None:
            origin.send_prepared(self._prepare(frames.ack_frame(message, message.client_id)))

    def announce(self, message) -> None:
        """Tell other processes of a message stored here: none to tell without a bus."""

    def mentioned(self, room: str, seq: int, author_id: str, author: str, text: str, user_ids) -> None:
        """``mention`` to every socket of each mentioned user but the author, joined to the room or not
        (the resolver let in only users who may read it: chatd.chat.mentions)."""
        payload = frames.encode({"type": "mention", "room": room, "seq": seq, "user": author, "text": text})
        for user_id in user_ids:
            if user_id != author_id:
                for sock in self._registry.connections_of(user_id):
                    sock.send(payload)

    def message_edited(self, room: str, seq: int, text: str, edited_at) -> None:
        self._to_room(room, frames.encode({
            "type": "edited", "room": room, "seq": seq, "text": text, "edited_at": iso8601(edited_at)}))

    def message_deleted(self, room: str, seq: int) -> None:
        self._to_room(room, frames.encode({"type": "deleted", "room": room, "seq": seq}))

    def thread_updated(self, room: str, root: int, thread: dict) -> None:
        """A reply was stored: the root's new summary, as a ``thread`` frame."""
        self._to_room(room, frames.thread_frame(room, root, thread))

    def reaction(self, room: str, seq: int, emoji: str, username: str, on: bool, reactions=(), reactors=None) -> None:
        """A reaction added or removed (``reactions`` and ``reactors``, the message's after it, are for other
        processes' caches)."""
        self._to_room(room, frames.reaction_frame(room, seq, emoji, username, on))

    def typing(self, room: str, user_id: str, username: str, typing: bool) -> None:
        payload = frames.encode({"type": "typing", "room": room, "user": username, "typing": typing})
        self._to_room(room, payload, droppable=True, skip_user=user_id)

    def read(self, room: str, user_id: str, username: str, seq: int) -> None:
        payload = frames.encode({"type": "read", "room": room, "user": username, "seq": seq})
        self._to_room(room, payload, droppable=True, skip_user=user_id)

    def presence(self, room: str, user_id: str, username: str, event: str) -> None:
        """``join``, ``leave``, ``online`` or ``offline``, to the room's other members."""
        payload = frames.encode({"type": "presence", "room": room, "user": username, "event": event})
        self._to_room(room, payload, skip_user=user_id)

    def member_left(self, room: str, user_id: str, username: str, reason: str | None = None) -> None:
        """The user is no longer a member: every socket of theirs that joined the room leaves it (told
        ``left``, with ``reason`` "removed" when someone else removed them), and receives no more of it."""
        self.lost_access(room, user_id, reason)
        self.presence(room, user_id, username, "leave")

    def lost_access(self, room: str, user_id: str, reason: str | None = "removed") -> None:
        """The user may no longer read the room: every socket of theirs here that joined it leaves it (told
        ``left``), and receives no more of it. The room is not told (``member_left`` does that)."""
        left = frames.encode({"type": "left", "room": room, **({"reason": reason} if reason else {})})
        registry = self._registry
        registry.stopped_being_member(user_id, room)
        for sock in registry.connections_of(user_id):
            if registry.has_joined(sock, room):
                registry.unsubscribe(sock, room)
                sock.send(left)

    def invited(self, user_id: str, room: str, view: dict, by: str) -> None:
        """The user was made a member by someone else (an invitation, a new direct room): ``invited`` to
        every socket of theirs; they may join it from now on."""
        self._registry.became_member(user_id, room)
        payload = frames.encode({"type": "invited", "room": view, "by": by})
        for sock in self._registry.connections_of(user_id):
            sock.send(payload)

    def member_changed(self, room: str, username: str, event: str, role: str | None) -> None:
        """``member`` (``added``, ``removed`` or ``role``) to the room's sockets."""
        self._to_room(room, frames.encode({"type": "member", "room": room, "user": username, "event": event,
                                           "role": role}))

    def room_changed(self, room: str, view: dict) -> None:
        """``room`` (its new topic or visibility) to the room's sockets."""
        self._to_room(room, frames.encode({"type": "room", "room": view}))

    # -- account events -------------------------------------------------------

    def token_revoked(self, jti: str) -> None:
        """Logout (or a revocation seen elsewhere): that token's sockets close with 4001."""
        for sock in self._registry.connections_with_token(jti):
            sock.close(CLOSE_REVOKED, "token revoked")

    def password_changed(self, user_id: str, before: float | None = None) -> None:
        """Sockets of tokens issued before the change (all of them if ``before`` is None) close with 4001."""
        for sock in self._registry.connections_of(user_id):
            if before is None or sock.issued_at < before:
                sock.close(CLOSE_REVOKED, "token revoked")

    def user_banned(self, user_id: str) -> None:
        for sock in self._registry.connections_of(user_id):
            sock.close(CLOSE_BANNED, "banned")

    def user_deleted(self, user_id: str) -> None:
        for sock in self._registry.connections_of(user_id):
            sock.close(CLOSE_REVOKED, "token revoked")

    def user_renamed(self, user_id: str, username: str) -> None:
        """Their sockets (and what they send from now on) and the cached history show the new name."""
        self._registry.rename(user_id, username)
        self._rooms.rename_author(user_id, username)

    def server_stopping(self) -> None:
        """Every socket of this process closes with 1001 (going away); clients reconnect at once."""
        for sock in self._registry.connections():
            sock.going_away()
