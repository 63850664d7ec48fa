"""Parse request bodies into typed values before anything touches the store.

Every field must be a JSON string: an object like ``{"$ne": ""}`` is refused
here, so no client value ever becomes a query operator. Unknown fields are
refused too (SPEC.md, Details: Users).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass

from chatd import errors

USERNAME = re.compile(r"[A-Za-z0-9_.-]{3,32}")
# Pragmatic address syntax: one @, a dotted domain, no spaces or control characters.
EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+")
ROLES = ("user", "admin")
MAX_BODY = 64 * 1024
MAX_REASON = 500
MAX_TEXT = 4000


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


def _fields(body: dict, allowed: tuple[str, ...], required: tuple[str, ...] = (), checks: bool = True) -> dict[str, str]:
    """The body's fields, all strings and all known and well-formed, or one 400 naming every problem."""
    problems = {name: "unknown field" for name in body if name not in allowed}
    problems.update({name: "required" for name in required if name not in body})
    for name, value in body.items():
        if name in allowed:
            if not isinstance(value, str):
                problems[name] = "must be a string"
            elif not _well_formed(value):
                problems[name] = "not valid Unicode"
            elif checks:
                problems[name] = _CHECKS[name](value)
    problems = {name: why for name, why in problems.items() if why}
    if problems:
        raise errors.invalid("The request has invalid fields.", problems)
    return body


def _well_formed(value: str) -> bool:
    """JSON may carry lone surrogates (half an emoji): not text that can be stored, hashed or shown."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_username(value: str) -> str | None:
    return None if USERNAME.fullmatch(value) else "3 to 32 characters: letters, digits, _ . -"


def _check_email(value: str) -> str | None:
    # Invisible characters (zero-width, bidi controls, soft hyphens: Unicode's "other" categories)
    # would let one address pass for another in an admin's eyes.
    if any(unicodedata.category(ch)[0] == "C" for ch in value):
        return "not a valid email address"
    return None if len(value) <= 254 and EMAIL.fullmatch(value) else "not a valid email address"


def _check_password(value: str) -> str | None:
    return None if 8 <= len(value) <= 128 else "8 to 128 characters"


def _check_role(value: str) -> str | None:
    return None if value in ROLES else "one of: " + ", ".join(ROLES)


def _check_reason(value: str) -> str | None:
    return None if len(value) <= MAX_REASON else f"at most {MAX_REASON} characters"


def _check_text(value: str) -> str | None:
    # As in a message frame (SPEC.md, Details: Frames in error): 1-4000 code points of real text.
    return None if 1 <= len(value) <= MAX_TEXT else f"1 to {MAX_TEXT} characters"


_CHECKS = {
    "username": _check_username,
    "email": _check_email,
    "password": _check_password,
    "role": _check_role,
    "reason": _check_reason,
    "text": _check_text,
}


@dataclass(frozen=True)
class Registration:
    username: str
    email: str
    password: str


@dataclass(frozen=True)
class Login:
    login: str  # a username or an email
    password: str


def registration(body: dict) -> Registration:
    names = ("username", "email", "password")
    return Registration(**_fields(body, names, required=names))


def login(body: dict) -> Login:
    # Types only: a malformed name or password is just a wrong credential (the same 401).
    fields = _fields(body, ("username", "email", "password"), checks=False)
    problems = {}
    if "password" not in fields:
        problems["password"] = "required"
    if ("username" in fields) == ("email" in fields):
        problems["username"] = "give either username or email"
    if problems:
        raise errors.invalid("The request has invalid fields.", problems)
    return Login(fields["username"] if "username" in fields else fields["email"], fields["password"])


def user_changes(body: dict) -> dict[str, str]:
    """Validated changes for PATCH/PUT /api/users/{id}; ``role`` is checked for admin by the caller."""
    return dict(_fields(body, ("username", "email", "password", "role")))


def ban(body: dict) -> str | None:
    """The reason of POST /api/users/{id}/ban (optional; an empty body is no reason)."""
    return _fields(body, ("reason",)).get("reason") or None


def message_edit(body: dict) -> str:
    """The new text of PATCH /api/rooms/{room}/messages/{seq}."""
    return _fields(body, ("text",), required=("text",))["text"]


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
