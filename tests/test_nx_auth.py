"""Unit tests for chatd.storage.nx_auth: the embedded store's SCRAM-SHA-1 server and per-connection gate.

The client side is the drivers' own code (txmongo's, which chatd uses, and
pymongo's), talking to the gate in-process, so the server is checked against
what real clients compute rather than against a copy of itself.
"""

from __future__ import annotations

import base64
import os
import stat

from pymongo.auth_shared import _build_credentials_tuple
from pymongo.errors import OperationFailure
from pymongo.synchronous.auth import _authenticate_scram
from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase
from txmongo.protocol import MongoAuthenticationError, MongoProtocol

from chatd.storage.nx_auth import AuthGate, Credentials, ScramKeys, _Conversation

CREDENTIALS = Credentials("chatd", "s3cret-password")


def txmongo_login(gate: AuthGate, connection, user: str, password: str):
    """Authenticate ``connection`` with txmongo's SCRAM-SHA-1 client; its Deferred's result or failure."""
    protocol = MongoProtocol()
    protocol.send_op_query_command = lambda database, command: defer.succeed(gate.check(connection, command))
    return protocol.authenticate_scram_sha1("chatd", user, password)


class _PymongoConnection:
    """What pymongo's SCRAM client needs of a connection: ``command``, raising on ``ok: 0`` as pymongo does."""

    auth_ctx = None

    def __init__(self, gate: AuthGate, connection) -> None:
        self.gate = gate
        self.connection = connection

    def command(self, database, command):
        reply = self.gate.check(self.connection, dict(command))
        if not reply.get("ok"):
            raise OperationFailure(reply["errmsg"], reply["code"], reply)
        return reply


def pymongo_login(gate: AuthGate, connection, user: str, password: str) -> None:
    """Authenticate ``connection`` with pymongo's SCRAM-SHA-1 client (which skips the empty last step)."""
    credentials = _build_credentials_tuple("SCRAM-SHA-1", "chatd", user, password, {}, "chatd")
    _authenticate_scram(credentials, _PymongoConnection(gate, connection), "SCRAM-SHA-1")


class Rfc5802Tests(SynchronousTestCase):
    """The SCRAM arithmetic is RFC 5802's: its worked example (section 5) comes out byte for byte."""

    def test_rfc_example(self):
        """user/pencil with the RFC's salt and nonces gives the RFC's server-first and server signature."""
        keys = ScramKeys.derive(b"pencil", base64.b64decode("QSXCR+Q6sek8bf92"), 4096)
        conversation = _Conversation(keys, b"user", b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", b"3rfcNHYJY1ZVvWVs7j")
        self.assertEqual(conversation.server_first,
                         b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
        server_final = conversation.verify(
            b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")
        self.assertEqual(server_final, b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")


class GateTests(SynchronousTestCase):
    """A connection may use the store only after proving it knows the password."""

    def setUp(self):
        self.gate = AuthGate(CREDENTIALS)

    def test_unauthenticated_commands_are_refused(self):
        """Reads, writes and admin commands get MongoDB's Unauthorized (13); a driver's handshake passes."""
        for command in [{"find": "users"}, {"insert": "users", "documents": []}, {"listDatabases": 1},
                        {"ping": 1}, {"getMore": 1}, {}, None, {"find": "users", "hello": 1}]:
            with self.subTest(command=command):
                reply = self.gate.check("c1", command)
                self.assertEqual((reply["ok"], reply["code"], reply["codeName"]), (0.0, 13, "Unauthorized"))
        for command in [{"hello": 1}, {"isMaster": 1}, {"ismaster": 1}, {"buildInfo": 1}]:
            with self.subTest(command=command):
                self.assertIsNone(self.gate.check("c1", command))

    def test_txmongo_logs_in(self):
        """txmongo's SCRAM-SHA-1 (with the empty third step) authenticates; then every command is let through."""
        self.successResultOf(txmongo_login(self.gate, "c1", "chatd", CREDENTIALS.password))
        self.assertTrue(self.gate.authenticated("c1"))
        self.assertIsNone(self.gate.check("c1", {"find": "users"}))

    def test_pymongo_logs_in(self):
        """pymongo's SCRAM-SHA-1 (which asks to skip the empty step) authenticates too."""
        pymongo_login(self.gate, "c1", "chatd", CREDENTIALS.password)
        self.assertTrue(self.gate.authenticated("c1"))

    def test_wrong_password_or_user_fails(self):
        """A wrong password or an unknown user gets AuthenticationFailed (18) and stays refused."""
        attempts = [("chatd", "wrong"), ("root", CREDENTIALS.password), ("chatd", CREDENTIALS.password + "x")]
        for user, password in attempts:
            with self.subTest(user=user, password=password):
                with self.assertRaises(OperationFailure) as raised:
                    pymongo_login(self.gate, "c1", user, password)
                self.assertEqual(raised.exception.code, 18)
                self.assertFalse(self.gate.authenticated("c1"))
                self.assertEqual(self.gate.check("c1", {"find": "users"})["code"], 13)
        self.failureResultOf(txmongo_login(self.gate, "c1", "chatd", "wrong"), MongoAuthenticationError)
        self.assertFalse(self.gate.authenticated("c1"))

    def test_authentication_is_per_connection(self):
        """One connection's login does not open another, and a closed connection's state is forgotten."""
        pymongo_login(self.gate, "c1", "chatd", CREDENTIALS.password)
        self.assertEqual(self.gate.check("c2", {"find": "users"})["code"], 13)
        self.gate.forget("c1")
        self.assertEqual(self.gate.check("c1", {"find": "users"})["code"], 13)

    def test_replayed_proof_fails(self):
        """A client-final message recorded from one login is useless in another conversation (fresh nonce)."""
        sent = []
        check = self.gate.check

        def recording(connection, command):
            sent.append(command)
            return check(connection, command)

        self.gate.check = recording
        pymongo_login(self.gate, "c1", "chatd", CREDENTIALS.password)
        del self.gate.check
        start, final = sent
        self.assertEqual(self.gate.check("c2", start)["ok"], 1.0)
        reply = self.gate.check("c2", dict(final, conversationId=1))
        self.assertEqual(reply["code"], 18)
        self.assertFalse(self.gate.authenticated("c2"))

    def test_malformed_conversations(self):
        """Other mechanisms, channel binding, bad payloads and unknown conversations are refused, never crash."""
        def start(payload, mechanism="SCRAM-SHA-1"):
            return self.gate.check("c1", {"saslStart": 1, "mechanism": mechanism, "payload": payload})

        self.assertEqual(start(b"n,,n=chatd,r=abc", "SCRAM-SHA-256")["code"], 334)
        for payload in [b"p=tls-unique,,n=chatd,r=abc", b"n,a=admin,n=chatd,r=abc", b"n,,n=chatd,r=", b"n,,r=abc",
                        b"garbage", b"", b"n,,n=ch=td,r=abc", b"n,,n=\xff,r=abc", 42, None]:
            with self.subTest(payload=payload):
                self.assertEqual(start(payload)["code"], 18)
        self.assertEqual(self.gate.check("c1", {"saslContinue": 1, "conversationId": 1, "payload": b""})["code"], 17)
        self.assertEqual(start(b"n,,n=chatd,r=abc")["ok"], 1.0)
        for payload in [b"", b"c=biws,r=abc", b"c=biws,r=abc,p=!!!", b"c=eSws,r=abc,p=AAAA"]:
            with self.subTest(final=payload):
                reply = self.gate.check("c1", {"saslContinue": 1, "conversationId": 1, "payload": payload})
                self.assertIn(reply["code"], (17, 18))
        self.assertFalse(self.gate.authenticated("c1"))


class CredentialsFileTests(SynchronousTestCase):
    """The store's password lives in a private file and stays out of reprs."""

    def test_round_trip_and_mode(self):
        """A written file is mode 0600 and reads back the same; a malformed one is a ValueError."""
        path = self.mktemp()
        credentials = Credentials.generate()
        credentials.write(path)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(Credentials.read(path), credentials)
        for text in ["", "{}", '{"user": "chatd"}', '["chatd", "pw"]', '{"user": "", "password": "x"}']:
            with self.subTest(text=text):
                with open(path, "w") as f:
                    f.write(text)
                self.assertRaises(ValueError, Credentials.read, path)

    def test_password_not_in_repr(self):
        """Logging the credentials object by mistake does not print the password."""
        self.assertNotIn(CREDENTIALS.password, repr(CREDENTIALS))
        self.assertIn(CREDENTIALS.password, CREDENTIALS.uri("127.0.0.1", 1, "chatd"))
