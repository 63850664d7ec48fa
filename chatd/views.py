"""How domain values look to clients (SPEC.md's ``User``); no password hash ever."""

from __future__ import annotations

from datetime import datetime, timezone

from chatd.storage.records import UserRecord


def iso8601(moment: datetime) -> str:
    """UTC, millisecond precision, ``Z`` suffix."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def user_view(user: UserRecord, online: bool) -> dict:
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "role": user.role,
        "created_at": iso8601(user.created_at),
        "online": online,
    }
