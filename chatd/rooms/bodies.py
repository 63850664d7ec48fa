"""Bodies of the room routes, checked before anything is asked of the store (STYLE.md §1: validate at the edge)."""

from __future__ import annotations

from chatd import errors
from chatd.accounts.validation import fields
from chatd.chat.frames import ROOM
from chatd.rooms.naming import is_direct_name

MAX_TOPIC = 250
MAX_DM_OTHERS = 8


def _name(value: str) -> str | None:
    if not ROOM.fullmatch(value):
        return "1 to 64 of letters, digits and _.-"
    if is_direct_name(value):
        return "names of the form dm-<24 hex digits> are kept for direct rooms"
    return None


def _visibility(value: str) -> str | None:
    return None if value in ("public", "private") else "public or private"


def _topic(value: str) -> str | None:
    return None if len(value) <= MAX_TOPIC else f"at most {MAX_TOPIC} characters"


def _role(*allowed: str):
    return lambda value: None if value in allowed else " or ".join(allowed)


def new_room(body: dict) -> dict:
    """POST /api/rooms: ``name``, ``visibility``, optional ``topic``."""
    return fields(body, ("name", "visibility", "topic"), required=("name", "visibility"),
                  checks={"name": _name, "visibility": _visibility, "topic": _topic})


def room_changes(body: dict) -> dict:
    """PATCH /api/rooms/{room}: any of ``topic``, ``visibility``, at least one."""
    found = fields(body, ("topic", "visibility"), checks={"visibility": _visibility, "topic": _topic})
    if not found:
        raise errors.invalid("Give a topic or a visibility.", {"topic": "or visibility required"})
    return found


def invitation(body: dict) -> dict:
    """POST /api/rooms/{room}/members: ``user`` (a username), optional ``role`` (member or moderator)."""
    return fields(body, ("user", "role"), required=("user",), checks={"role": _role("member", "moderator")})


def role_change(body: dict) -> str:
    """PATCH /api/rooms/{room}/members/{user}: ``role``."""
    return fields(body, ("role",), required=("role",), checks={"role": _role("member", "moderator", "owner")})["role"]


def direct_users(body: dict) -> list[str]:
    """POST /api/dms: ``users``, 1 to 8 usernames (strings), each once."""
    unknown = {name: "unknown field" for name in body if name != "users"}
    users = body.get("users")
    if unknown or not isinstance(users, list) or not all(isinstance(u, str) and u for u in users):
        raise errors.invalid("Give users: a list of usernames.", {**unknown, "users": "a list of usernames"})
    users = list(dict.fromkeys(users))
    if not 1 <= len(users) <= MAX_DM_OTHERS:
        raise errors.invalid(f"A direct room has 1 to {MAX_DM_OTHERS} other users.",
                             {"users": f"1 to {MAX_DM_OTHERS} usernames"})
    return users
