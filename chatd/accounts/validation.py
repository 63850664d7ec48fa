"""The rules of account fields, and the account request bodies parsed into typed values.

Every field must be a JSON string: an object like ``{"$ne": ""}`` is refused
here, so no client value ever becomes a query operator. Unknown fields are
refused too (SPEC.md, Details: Users). :func:`fields` is the shared checker;
``chatd.web.params`` uses it for the other bodies.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from chatd import errors

USERNAME = re.compile(r"[A-Za-z0-9_.-]{3,32}")
# Pragmatic address syntax: one @, a dotted domain, no spaces or control characters.
EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+")
ROLES = ("user", "admin")
MAX_REASON = 500


def fields(body: dict, allowed: tuple[str, ...], required: tuple[str, ...] = (), checks=None) -> dict[str, str]:
    """The body's fields, all strings and all known and well-formed, or one 400 naming every problem.

    ``checks`` maps a field to its rule (a function answering why a value is refused, or None);
    by default the account fields' rules.
    """
    checks = _CHECKS if checks is None else checks
    problems = {name: "unknown field" for name in body if name not in allowed}
    problems.update({name: "required" for name in required if name not in body})
    for name, value in body.items():
        if name in allowed:
            if not isinstance(value, str):
                problems[name] = "must be a string"
            elif not _well_formed(value):
                problems[name] = "not valid Unicode"
            elif name in checks:
                problems[name] = checks[name](value)
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


_CHECKS = {
    "username": _check_username,
    "email": _check_email,
    "password": _check_password,
    "role": _check_role,
    "reason": _check_reason,
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
    return Registration(**fields(body, names, required=names))


def login(body: dict) -> Login:
    # Types only: a malformed name or password is just a wrong credential (the same 401).
    given = fields(body, ("username", "email", "password"), checks={})
    problems = {}
    if "password" not in given:
        problems["password"] = "required"
    if ("username" in given) == ("email" in given):
        problems["username"] = "give either username or email"
    if problems:
        raise errors.invalid("The request has invalid fields.", problems)
    return Login(given["username"] if "username" in given else given["email"], given["password"])


def user_changes(body: dict) -> dict[str, str]:
    """Validated changes for PATCH/PUT /api/users/{id}; ``role`` is checked for admin by the caller."""
    return dict(fields(body, ("username", "email", "password", "role")))


def ban(body: dict) -> str | None:
    """The reason of POST /api/users/{id}/ban (optional; an empty body is no reason)."""
    return fields(body, ("reason",)).get("reason") or None
