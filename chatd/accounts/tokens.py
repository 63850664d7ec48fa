"""Issuing and checking HS256 JWTs.

Only the signature, algorithm and claim shapes are checked here; whether the
token was revoked or its user still exists is ``chatd.accounts.auth``' business.
Time comes from the injected clock (not PyJWT's ``time.time``) so expiry is
testable and consistent with the rest of chatd.
"""

from __future__ import annotations

import binascii
import json
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

import jwt
from jwt.algorithms import HMACAlgorithm
from jwt.api_jws import PyJWS
from jwt.utils import base64url_decode, base64url_encode
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


class _OneSecretHS256(HMACAlgorithm):
    """PyJWT's HS256, checking its one secret once instead of on every call.

    PyJWT 2.15's ``prepare_key`` makes sure an HMAC secret is not a PEM, SSH or
    DER key nor a JWK (trial parses with ``cryptography`` and ``json``): about
    100 µs per call, a fifth of a WebSocket handshake. chatd's secret never
    changes after start, so the checked key is remembered.
    """

    def __init__(self) -> None:
        super().__init__(HMACAlgorithm.SHA256)
        self._checked: tuple[bytes, bytes] | None = None

    def prepare_key(self, key):
        checked = self._checked
        if checked is not None and checked[0] is key:
            return checked[1]
        prepared = super().prepare_key(key)
        self._checked = (key, prepared)
        return prepared


class _JWS(PyJWS):
    """PyJWS with a faster check of unpadded base64url segments.

    PyJWT 2.15 checks each character of each segment against the alphabet in a
    Python generator (~15 µs per token). For a segment without padding (all of
    chatd's) one regular expression makes the same check, and the decoding is
    PyJWT's own; anything else takes PyJWT's path unchanged. (Should PyJWT rename
    this private method, verification stays correct, only slower.)
    """

    @staticmethod
    def _decode_base64url_segment(segment: bytes, name: str) -> bytes:
        if len(segment) % 4 != 1 and _UNPADDED_BASE64URL.fullmatch(segment):
            try:
                decoded = base64url_decode(segment)
            except (TypeError, binascii.Error):
                decoded = None
            if decoded is not None and base64url_encode(decoded) == segment:  # canonical, as PyJWT requires
                return decoded
        return PyJWS._decode_base64url_segment(segment, name)  # and its error for anything else


_UNPADDED_BASE64URL = re.compile(rb"[A-Za-z0-9_-]*")


def _verifier() -> PyJWS:
    """PyJWT's JWS layer knowing HS256 only, with the remembered secret check."""
    jws = _JWS(algorithms=[])
    jws.register_algorithm(ALGORITHM, _OneSecretHS256())
    return jws


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
        self._jws = _verifier()

    def set_secret(self, secret: bytes) -> None:
        """Install the signing secret (loaded at service start, not at build time)."""
        self._secret = secret

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
