"""Times as clients see them: ISO 8601 in UTC."""

from __future__ import annotations

from datetime import datetime, timezone


def iso8601(moment: datetime) -> str:
    """UTC, millisecond precision, ``Z`` suffix."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_from(seconds: float) -> datetime:
    """An epoch second (a clock's ``seconds()``) as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, timezone.utc)
