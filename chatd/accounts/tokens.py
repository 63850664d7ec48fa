"""Issuing and checking HS256 JWTs.

Only the signature, algorithm and claim shapes are checked here; whether the
token was revoked or its user still exists is ``chatd.accounts.auth``' business.
Time comes from the injected clock (not PyJWT's ``time.time``) so expiry is
testable and consistent with the rest of chatd. Signatures are checked by
PyJWT's own ``PyJWS``, or, with the speed-ups on, by the one in
chatd.web.speedups.jwt_hs256 (the same checks, faster).
"""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

import jwt
from jwt.api_jws import PyJWS
from twisted.internet.interfaces import IReactorTime

ALGORITHM = "HS256"
_REQUIRED = ("sub", "username", "role", "iat", "exp", "jti")


class InvalidToken(Exception):
    """The token is malformed, forged, uses another algorithm, or has expired."""


@dataclass(frozen=True)
class Claims:
    """The verified content of a token."""

    sub: str
    username: str
    role: str
    iat: float
    exp: float
    jti: str

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.exp, timezone.utc)


@dataclass(frozen=True)
class IssuedToken:
    token: str
    claims: Claims


def plain_verifier() -> PyJWS:
    """PyJWT's own JWS layer, knowing HS256 only (the fast one is chatd.web.speedups.jwt_hs256)."""
    return PyJWS(algorithms=[ALGORITHM])


class TokenIssuer:
    """Signs and verifies tokens with one secret and lifetime.

    ``iat`` keeps sub-second precision (a JSON number, as RFC 7519 allows) so
    that a password change revokes tokens issued moments before it, while a
    login right after it still works.
    """

    def __init__(self, clock: IReactorTime, ttl: int, secret: bytes | None = None) -> None:
        self._clock = clock
        self._ttl = ttl
        self._secret = secret
        self._jws = plain_verifier()

    def set_secret(self, secret: bytes) -> None:
        """Install the signing secret (loaded at service start, not at build time)."""
        self._secret = secret

    @property
    def verifier(self) -> PyJWS:
        """The ``PyJWS`` that checks signatures."""
        return self._jws

    def use_verifier(self, jws: PyJWS | None) -> None:
        """Verify with ``jws`` (the speed-ups' verifier, installed at start), or PyJWT's own with None."""
        self._jws = jws if jws is not None else plain_verifier()

    def issue(self, user_id: str, username: str, role: str) -> IssuedToken:
        """A fresh token for this user, expiring ``ttl`` seconds from now."""
        now = self._clock.seconds()
        claims = Claims(
            sub=user_id,
            username=username,
            role=role,
            iat=now,  # unrounded: rounding up could outlast a password change made just after
            exp=math.ceil(now + self._ttl),  # whole seconds, never shorter than the ttl
            jti=secrets.token_urlsafe(16),
        )
        payload = {name: getattr(claims, name) for name in _REQUIRED}
        return IssuedToken(jwt.encode(payload, self._key(), algorithm=ALGORITHM), claims)

    def verify(self, token: str) -> Claims:
        """The token's claims, or :class:`InvalidToken`."""
        try:
            # Only HS256 is registered: "none" and every other algorithm are refused here.
            signed = self._jws.decode(token, self._key(), algorithms=[ALGORITHM])
            payload = json.loads(signed)  # signed by us, so no hostile nesting gets this far
        except jwt.PyJWTError as e:
            raise InvalidToken(type(e).__name__) from None
        except ValueError:
            raise InvalidToken("payload is not JSON") from None
        if not isinstance(payload, dict):
            raise InvalidToken("payload is not an object")
        claims = _claims_from(payload)
        if claims.exp <= self._clock.seconds():
            raise InvalidToken("expired")
        return claims

    def _key(self) -> bytes:
        if self._secret is None:
            raise RuntimeError("the token secret has not been loaded yet")
        return self._secret


def _claims_from(payload: dict) -> Claims:
    """Check every claim's type; a token that passes the signature may still be nonsense."""
    strings = ("sub", "username", "role", "jti")
    numbers = ("iat", "exp")
    if not all(isinstance(payload.get(name), str) for name in strings):
        raise InvalidToken("bad claims")
    if not all(
        isinstance(payload.get(name), (int, float))
        and not isinstance(payload.get(name), bool)
        and math.isfinite(payload[name])  # JSON parsers accept NaN and Infinity
        for name in numbers
    ):
        raise InvalidToken("bad claims")
    return Claims(**{name: payload[name] for name in _REQUIRED})
