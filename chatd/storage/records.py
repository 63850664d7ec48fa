"""Plain values the store hands to the domain (no bson, no txmongo)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class UserRecord:
    """A stored account. ``password_hash`` never leaves the server (see ``chatd.accounts.views``)."""

    id: str
    username: str
    email: str
    role: str
    created_at: datetime
    password_hash: bytes
    banned: bool = False
    ban_reason: str | None = None
    # Tokens issued before this instant are refused (set by a password change).
    tokens_valid_after: float = 0.0
    # The rooms this user is a member of (SPEC.md, Details: Membership).
    rooms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Message:
    """A stored chat message. ``id`` is ``"{room}:{seq}"``: unique per room and seq by construction."""

    room: str
    seq: int
    user_id: str
    user: str  # the author's username when they sent it
    ts: datetime
    text: str | None = None
    client_id: str | None = None
    file: dict | None = None
    edited_at: datetime | None = None
    deleted: bool = False
    reply_to: int | None = None  # the seq of its thread's root (SPEC.md, Details: Threads)
    # A root's thread summary: {"replies": int, "last_reply_at": datetime, "last_reply_seq": int}; None until a reply.
    thread: dict | None = None
    # Reactions as "<emoji> <user id>" in the order they were added (emoji hold no whitespace), and the
    # reacting users' current names by id (kept up to date by rename_author).
    reactions: tuple[str, ...] = ()
    reactors: dict | None = None
    # The users the text mentions who may read the room, resolved once when it is stored
    # (chatd.chat.mentions): usernames as registered, and their ids in the same order.
    mentions: tuple[str, ...] = ()
    mention_ids: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return message_id(self.room, self.seq)

    def reaction_groups(self) -> dict[str, list[str]]:
        """SPEC.md's ``reactions``: {emoji: [username, ...]}, emoji and users in the order they came."""
        groups: dict[str, list[str]] = {}
        names = self.reactors or {}
        for key in self.reactions:
            emoji, _, user_id = key.partition(" ")
            groups.setdefault(emoji, []).append(names.get(user_id, user_id))
        return groups


def message_id(room: str, seq: int) -> str:
    return f"{room}:{seq}"


@dataclass(frozen=True)
class Membership:
    room: str
    user_id: str
    joined_at: datetime
    joined_seq: int  # the room's last seq when the user joined: older messages are not unread
    read_seq: int = 0
    # "member" or "moderator"; the owner is the room's ``owner_id`` (one place, so there is exactly one).
    role: str = "member"
    # Messages mentioning the user since they last read past the latest of them, and that latest seq.
    mentions: int = 0
    mention_seq: int = 0


@dataclass(frozen=True)
class RoomHead:
    """What the store knows of a room without reading its messages."""

    name: str
    last_seq: int = 0
    last_message_at: datetime | None = None
    members: int = 0
    # The room as a record (SPEC.md, Details: Rooms and roles). ``visibility`` is None for a room
    # the store has seen (messages, members) but that has no record yet: such rooms are public.
    visibility: str | None = None
    topic: str = ""
    owner_id: str | None = None  # None for direct rooms, and for a room its last member left
    created_at: datetime | None = None

    @property
    def kind(self) -> str:
        """``public``, ``private`` or ``direct``: what the access rule decides on."""
        return self.visibility or "public"


@dataclass(frozen=True)
class FileRecord:
    """A file uploaded to a room; its bytes are read with ``IStore.read_file``."""

    id: str
    name: str
    size: int
    content_type: str
    room: str
    user_id: str
    uploaded_at: datetime


class StoreUnavailable(Exception):
    """The store could not be reached in time; the caller answers 503."""


class DuplicateKey(Exception):
    """A unique index refused a write; ``field`` names the clashing field."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


class LastAdmin(Exception):
    """The change would leave no admin who is not banned, so the store refused it."""


class TooManyKinds(Exception):
    """A new emoji on a message that already holds the most distinct emoji allowed (SPEC.md: Reactions)."""


class InsertStopped(Exception):
    """An ordered batch insert stopped at ``index``: the messages before it are stored, none after.

    ``reason`` is ``"seq"`` (another process already stored that seq) or
    ``"client_id"`` (that user already sent that client_id to that room).
    """

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"insert stopped at {index}: duplicate {reason}")
        self.index = index
        self.reason = reason
