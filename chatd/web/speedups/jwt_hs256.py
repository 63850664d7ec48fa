"""Speed-up: PyJWT's HS256 verification without its per-call key checks and per-character base64 loop.

**What it reads.** Two things PyJWT does not promise: ``HMACAlgorithm.prepare_key``
(public, but overriding it relies on PyJWS calling it once per verification
with the key it was given) and the private static method
``PyJWS._decode_base64url_segment(segment, name)`` that ``PyJWS._load`` calls
for each of a token's three segments. Both appeared in PyJWT 2.14;
``tests/test_speedups_contract.py`` checks them on the installed PyJWT.

**Why it is worth it.** A token check went from ~120 to ~20 µs
(docs/PERFORMANCE.md, issue 3), a sixth of a WebSocket handshake:

1. PyJWT's ``prepare_key`` makes sure an HMAC secret is not a PEM, SSH or DER
   key nor a JWK (trial parses with ``cryptography`` and ``json``): about
   100 µs per call. chatd's secret never changes after start, so the checked
   key is remembered (:class:`_OneSecretHS256`, registered through PyJWT's own
   algorithm registry).
2. PyJWT checks each character of each segment against the alphabet in a
   Python generator (~15 µs per token). For a segment without padding (all of
   chatd's) one regular expression makes the same check, and the decoding is
   PyJWT's own; anything else takes PyJWT's path unchanged (:class:`_JWS`).

Off (``CHATD_SPEEDUPS=0``), chatd.accounts.tokens verifies with a plain
``PyJWS`` that knows HS256 only.
"""

from __future__ import annotations

import binascii
import re

from jwt.algorithms import HMACAlgorithm
from jwt.api_jws import PyJWS
from jwt.utils import base64url_decode, base64url_encode

ALGORITHM = "HS256"
_UNPADDED_BASE64URL = re.compile(rb"[A-Za-z0-9_-]*")


class _OneSecretHS256(HMACAlgorithm):
    """PyJWT's HS256, checking its one secret once instead of on every call."""

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
    """PyJWS with a faster check of unpadded base64url segments (should PyJWT rename it: correct, only slower)."""

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


def verifier() -> PyJWS:
    """PyJWT's JWS layer knowing HS256 only, with the remembered secret check and the fast segment check."""
    jws = _JWS(algorithms=[])
    jws.register_algorithm(ALGORITHM, _OneSecretHS256())
    return jws
