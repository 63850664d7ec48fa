"""Request bodies and query parameters that are not account fields: JSON bodies, paging, flags, edits."""

from __future__ import annotations

import json
import re

from chatd import errors
from chatd.accounts.validation import fields
from chatd.chat.frames import MAX_TEXT

MAX_BODY = 64 * 1024


def parse_json_object(raw: bytes, content_type: str | None) -> dict:
    """The request body as a JSON object, or the right 4xx."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise errors.ApiError(415, "unsupported_media_type", "Send a JSON body with Content-Type: application/json.")
    if len(raw) > MAX_BODY:
        raise errors.too_large(f"The body is larger than {MAX_BODY} bytes.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        raise errors.invalid("The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise errors.invalid("The body must be a JSON object.")
    return body


def _check_text(value: str) -> str | None:
    # As in a message frame (SPEC.md, Details: Frames in error): 1-4000 code points of real text.
    return None if 1 <= len(value) <= MAX_TEXT else f"1 to {MAX_TEXT} characters"


def message_edit(body: dict) -> str:
    """The new text of PATCH /api/rooms/{room}/messages/{seq}."""
    return fields(body, ("text",), required=("text",), checks={"text": _check_text})["text"]


def page_limit(raw: str | None, default: int = 50, maximum: int = 200) -> int:
    """A ``limit`` query parameter: 1..maximum, else 400."""
    if raw is None:
        return default
    if not re.fullmatch(r"\d{1,4}", raw) or not 1 <= int(raw) <= maximum:
        raise errors.invalid("limit must be a whole number from 1 to %d." % maximum, {"limit": f"1 to {maximum}"})
    return int(raw)


def cursor(raw: str | None, name: str) -> int | None:
    """A seq cursor query parameter (``before``): a whole number from 1, else 400."""
    if raw is None:
        return None
    if not re.fullmatch(r"\d{1,15}", raw) or int(raw) < 1:
        raise errors.invalid(f"{name} must be a seq (a whole number from 1).", {name: "a seq"})
    return int(raw)


def flag(raw: str | None, name: str) -> bool:
    """A boolean query parameter (``true``/``false``/``1``/``0``)."""
    if raw is None:
        return False
    value = raw.lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise errors.invalid(f"{name} must be true or false.", {name: "true or false"})
