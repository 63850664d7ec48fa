"""How an account looks to clients (SPEC.md's ``User``); no password hash ever."""

from __future__ import annotations

from chatd.storage.records import UserRecord
from chatd.times import iso8601


def user_view(user: UserRecord, online: bool) -> dict:
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "role": user.role,
        "created_at": iso8601(user.created_at),
        "online": online,
    }
