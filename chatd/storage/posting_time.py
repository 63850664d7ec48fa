"""The times a search posting is keyed by: ``t`` in whole epoch milliseconds and ``k``, its day and word.

Shared by the indexer and the search (chatd.storage.mongo_search), so a posting is
written and sought with the same arithmetic.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from chatd.storage.mongo_users import utc

DAY_MS = 86_400_000
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MS = timedelta(milliseconds=1)


def millis(when: datetime) -> int:
    """A posting's ``t``: the message's time in whole epoch milliseconds (exact, no float)."""
    return (aware(when) - EPOCH) // MS


def day_key(day: int, word: str) -> str:
    """A posting's ``k``: its day, then its word, so a day's postings of a prefix are one index range."""
    return f"{day:06d}:{word}"


def day(when: datetime) -> int:
    """A posting's day: whole UTC days since the epoch."""
    return millis(when) // DAY_MS


def aware(when: datetime | str | None) -> datetime:
    # utc() also reads the text nx-27017 keeps a datetime given through $set as (an edit's edited_at).
    return utc(when) if when is not None else datetime.min.replace(tzinfo=timezone.utc)
