"""Room names the server chooses: a direct room's name is a digest of its members (SPEC.md, Direct rooms)."""

from __future__ import annotations

import hashlib
import re

DIRECT = re.compile(r"dm-[0-9a-f]{24}")


def direct_name(user_ids) -> str:
    """``dm-`` and 24 lowercase hex digits of a digest of the sorted user ids: the same set of people,
    asked for by any of them in any order, names the same room."""
    digest = hashlib.sha256("\n".join(sorted(set(user_ids))).encode("ascii")).hexdigest()
    return "dm-" + digest[:24]


def is_direct_name(room: str) -> bool:
    """Names of this form are kept for direct rooms: nobody creates one by ``join`` or POST /api/rooms."""
    return DIRECT.fullmatch(room) is not None
