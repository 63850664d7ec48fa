"""Plain values the store hands to the domain (no bson, no txmongo)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class UserRecord:
    """A stored account. ``password_hash`` never leaves the server (see ``chatd.views``)."""

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


class StoreUnavailable(Exception):
    """The store could not be reached in time; the caller answers 503."""


class DuplicateKey(Exception):
    """A unique index refused a write; ``field`` names the clashing field."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field
