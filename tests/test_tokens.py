"""Unit tests for chatd.accounts.tokens: the HS256 JWTs of SPEC.md (Details: Tokens).

Every test runs twice: with PyJWT's own verifier (``CHATD_SPEEDUPS=0``) and, as ``FastTokenIssuerTests``,
with the speed-up's (chatd.web.speedups.jwt_hs256): both must give the same verdicts.
"""

import base64
import json

import jwt
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from chatd.accounts.tokens import InvalidToken, TokenIssuer
from chatd.web.speedups import jwt_hs256

SECRET = b"s" * 64
OTHER_SECRET = b"o" * 64
TTL = 3600


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(**overrides) -> dict:
    """Valid claims for the test clock; an override of ``...`` drops that claim."""
    claims = {"sub": "u1", "username": "alice", "role": "user", "iat": 1000.0, "exp": 1000 + TTL, "jti": "j1"}
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not ...}


class TokenIssuerTests(SynchronousTestCase):
    """Issuing and verifying tokens on an injected clock."""

    speedups = False  # True: verified by the speed-up's verifier

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1000)
        self.issuer = self.make_issuer(SECRET)

    def make_issuer(self, secret: bytes | None = None) -> TokenIssuer:
        """A TokenIssuer on the test's clock, with the speed-up's verifier installed if ``speedups``."""
        issuer = TokenIssuer(self.clock, TTL, secret)
        if self.speedups:
            issuer.use_verifier(jwt_hs256.verifier())
        return issuer

    def test_round_trip(self):
        """A freshly issued token verifies with every claim intact."""
        issued = self.issuer.issue("u1", "alice", "admin")
        claims = self.issuer.verify(issued.token)
        self.assertEqual(claims, issued.claims)
        self.assertEqual(
            (claims.sub, claims.username, claims.role, claims.iat, claims.exp),
            ("u1", "alice", "admin", 1000.0, 1000 + TTL),
        )
        self.assertTrue(claims.jti)
        self.assertEqual(claims.expires_at.timestamp(), 1000 + TTL)

    def test_unique_jti(self):
        """Two tokens issued at once are distinct (so one can be revoked alone)."""
        first = self.issuer.issue("u1", "alice", "user")
        second = self.issuer.issue("u1", "alice", "user")
        self.assertNotEqual(first.claims.jti, second.claims.jti)

    def test_expires_at_exp(self):
        """A token works until just before ``exp`` and is refused from ``exp`` on."""
        token = self.issuer.issue("u1", "alice", "user").token
        self.clock.advance(TTL - 0.5)
        self.assertEqual(self.issuer.verify(token).sub, "u1")
        self.clock.advance(0.5)
        self.assertRaises(InvalidToken, self.issuer.verify, token)

    def test_forged_signature(self):
        """A token signed with another secret is refused."""
        token = jwt.encode(_claims(), OTHER_SECRET, algorithm="HS256")
        self.assertRaises(InvalidToken, self.issuer.verify, token)

    def test_tampered_payload(self):
        """Changing the payload of a genuine token (e.g. to become admin) breaks it."""
        header, _, signature = self.issuer.issue("u1", "alice", "user").token.split(".")
        forged = ".".join([header, _b64(_claims(role="admin")), signature])
        self.assertRaises(InvalidToken, self.issuer.verify, forged)

    def test_alg_none(self):
        """An unsigned ``alg: none`` token is refused."""
        token = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(_claims()) + "."
        self.assertRaises(InvalidToken, self.issuer.verify, token)

    def test_other_hmac_algorithms(self):
        """HS384 and HS512 tokens signed with the right secret are still refused (HS256 only)."""
        for algorithm in ["HS384", "HS512"]:
            with self.subTest(algorithm=algorithm):
                token = jwt.encode(_claims(), SECRET, algorithm=algorithm)
                self.assertRaises(InvalidToken, self.issuer.verify, token)

    def test_control_genuine_hs256(self):
        """The hand-built claims used above do verify when properly signed (so refusals mean something)."""
        token = jwt.encode(_claims(), SECRET, algorithm="HS256")
        self.assertEqual(self.issuer.verify(token).username, "alice")

    def test_missing_claims(self):
        """A token without ``exp`` (or any other required claim) is refused."""
        for name in ["exp", "iat", "sub", "username", "role", "jti"]:
            with self.subTest(missing=name):
                token = jwt.encode(_claims(**{name: ...}), SECRET, algorithm="HS256")
                self.assertRaises(InvalidToken, self.issuer.verify, token)

    def test_wrong_claim_types(self):
        """Claims of the wrong JSON type are refused even when the signature is good."""
        for name, value in [
            ("exp", "9999999999"),
            ("exp", True),
            ("iat", "1000"),
            ("iat", [1000]),
            ("username", 5),
            ("role", {"$ne": ""}),
            ("sub", 1),
            ("jti", False),
        ]:
            with self.subTest(name=name, value=value):
                token = jwt.encode(_claims(**{name: value}), SECRET, algorithm="HS256")
                self.assertRaises(InvalidToken, self.issuer.verify, token)

    def test_garbage(self):
        """Strings that are not JWTs are refused with InvalidToken, not another error."""
        for text in ["", "garbage", "a.b.c", "...", "Bearer x", _b64({"alg": "HS256"}) + ".e30.", "\u00e9.\u00e9.\u00e9"]:
            with self.subTest(text=text):
                self.assertRaises(InvalidToken, self.issuer.verify, text)

    def test_no_secret_yet(self):
        """Issuing before the secret is loaded fails loudly instead of signing with nothing."""
        issuer = self.make_issuer()
        self.assertRaises(RuntimeError, issuer.issue, "u1", "alice", "user")

    def test_same_verdicts_as_plain_pyjwt(self):
        """Re-encoded, padded, non-canonical or foreign-alphabet variants get PyJWT's own verdict.

        chatd's verifier shortcuts PyJWT's base64url check for unpadded segments;
        every variant of a genuine token must still be accepted or refused exactly
        as ``jwt.decode`` would.
        """
        token = jwt.encode(_claims(), SECRET, algorithm="HS256")
        header, payload, signature = token.split(".")
        last = signature[-1]
        variants = {
            "genuine": token,
            "padded payload": ".".join([header, payload + "=" * (-len(payload) % 4), signature]),
            "padded signature": ".".join([header, payload, signature + "="]),
            "non-canonical signature": ".".join([header, payload, signature[:-1] + ("B" if last == "A" else "A")]),
            "standard alphabet": ".".join([header, payload.replace("-", "+").replace("_", "/"), signature]) + "+",
            "one char too many": ".".join([header, payload, signature + "A"]),
            "junk": ".".join([header, payload, signature[:-2] + "!!"]),
            "array payload": ".".join([header, _b64([1, 2]), signature]),
            "space": ".".join([header, payload, " " + signature]),
        }
        for name, variant in variants.items():
            with self.subTest(variant=name):
                try:
                    jwt.decode(variant, SECRET, algorithms=["HS256"], options={"verify_exp": False})
                    pyjwt_accepts = True
                except jwt.PyJWTError:
                    pyjwt_accepts = False
                try:
                    self.issuer.verify(variant)
                    accepted = True
                except InvalidToken:
                    accepted = False
                self.assertEqual(accepted, pyjwt_accepts)
        self.assertTrue(self.issuer.verify(token))  # the control: the genuine token passes

    def test_new_secret_refuses_old_tokens(self):
        """The verified secret is remembered, but a different secret is checked afresh."""
        token = self.issuer.issue("u1", "alice", "user").token
        self.issuer.verify(token)
        self.issuer.set_secret(OTHER_SECRET)
        self.assertRaises(InvalidToken, self.issuer.verify, token)

    def test_asymmetric_key_as_secret_is_refused(self):
        """PyJWT's check that an HMAC secret is not a public key still runs (once)."""
        pem = b"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"
        issuer = self.make_issuer(pem)
        token = jwt.encode(_claims(), b"x" * 64, algorithm="HS256")
        self.assertRaises(InvalidToken, issuer.verify, token)


class FastTokenIssuerTests(TokenIssuerTests):
    """TokenIssuerTests with the speed-up's verifier (what chatd.web.speedups installs at start)."""

    speedups = True

    def test_the_speedup_is_in_use(self):
        """The control: these tests do run on the speed-up's verifier."""
        self.assertIsInstance(self.issuer.verifier, jwt_hs256._JWS)
