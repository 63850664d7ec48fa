"""Password authentication for the embedded store: a SCRAM-SHA-1 server (RFC 5802, as MongoDB does it).

nx-27017 has no authentication, and txmongo speaks only SCRAM-SHA-1, so the
embedded store's child (:mod:`chatd.storage.nx_child`) puts an :class:`AuthGate`
in front of nx's command handler: on a connection that has not authenticated,
every command is refused with MongoDB's ``Unauthorized`` error except the few a
driver sends before authenticating. This module knows nothing about nx; it
works on command documents and connection ids.

MongoDB's SCRAM-SHA-1 runs on the "password digest",
``md5("user:mongo:password")`` in hex, rather than on the password itself
(pymongo's ``auth._password_digest``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

USER = "chatd"
# The password is 32 random bytes, out of reach of a dictionary attack whatever
# the count, so the lowest count drivers accept (pymongo refuses < 4096) keeps
# the client's key derivation, which txmongo runs on the reactor thread, short.
ITERATIONS = 4096

# Commands a driver sends before it has authenticated (MongoDB runs them for anyone).
BEFORE_AUTHENTICATION = frozenset({"hello", "Hello", "isMaster", "ismaster", "buildInfo", "buildinfo"})
SASL = frozenset({"saslStart", "saslContinue"})


@dataclass(frozen=True)
class Credentials:
    """The one user of the embedded store, kept in a file of mode 0600 (never on a command line)."""

    user: str
    password: str

    @classmethod
    def generate(cls) -> "Credentials":
        """A fresh random password for :data:`USER` (URL-safe, so it needs no quoting in a URI)."""
        return cls(USER, secrets.token_urlsafe(32))

    @classmethod
    def read(cls, path: Path) -> "Credentials":
        """Read a credentials file; ValueError if it is not one."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            credentials = cls(data["user"], data["password"])
        except (KeyError, TypeError, UnicodeDecodeError, json.JSONDecodeError):
            raise ValueError(f"{path} is not a credentials file") from None
        if not all(isinstance(v, str) and v for v in (credentials.user, credentials.password)):
            raise ValueError(f"{path} is not a credentials file")
        return credentials

    def write(self, path: Path) -> None:
        """Write the file with mode 0600, replacing any old one whole (a reader never sees half a file)."""
        path = Path(path)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"user": self.user, "password": self.password}, out)
        os.replace(temporary, path)

    def uri(self, host: str, port: int, database: str) -> str:
        """A ``mongodb://`` URI that authenticates as this user. It holds the password: never log it."""
        return f"mongodb://{self.user}:{self.password}@{host}:{port}/{database}"

    def __repr__(self) -> str:  # a stray repr in a log line must not show the password
        return f"Credentials(user={self.user!r}, password=...)"


def password_digest(user: str, password: str) -> bytes:
    """What MongoDB's SCRAM-SHA-1 uses as the password (pymongo's ``_password_digest``)."""
    return hashlib.md5(f"{user}:mongo:{password}".encode("utf-8")).hexdigest().encode("ascii")


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha1).digest()


@dataclass(frozen=True)
class ScramKeys:
    """What the server keeps of a password (RFC 5802 section 3): it can check a proof, not log in."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    @classmethod
    def derive(cls, password: bytes, salt: bytes, iterations: int = ITERATIONS) -> "ScramKeys":
        """The keys for ``password`` (for MongoDB, its :func:`password_digest`)."""
        salted = hashlib.pbkdf2_hmac("sha1", password, salt, iterations)
        return cls(salt, iterations, hashlib.sha1(_hmac(salted, b"Client Key")).digest(), _hmac(salted, b"Server Key"))


def _error(code: int, name: str, message: str) -> dict[str, Any]:
    return {"ok": 0.0, "errmsg": message, "code": code, "codeName": name}


def unauthorized(command: str | None) -> dict[str, Any]:
    """MongoDB's refusal of a command on a connection that has not authenticated."""
    return _error(13, "Unauthorized", f"command {command} requires authentication")


AUTHENTICATION_FAILED = _error(18, "AuthenticationFailed", "Authentication failed.")


class _Failed(Exception):
    """The SCRAM conversation cannot go on (the client only learns "Authentication failed.")."""


def _attributes(message: bytes, names: str) -> list[bytes]:
    """The values of a SCRAM message's leading attributes, which must be ``names`` in that order."""
    parts = message.split(b",")
    if len(parts) < len(names):
        raise _Failed("too few attributes")
    values = []
    for part, name in zip(parts, names):
        if not part.startswith(name.encode("ascii") + b"="):
            raise _Failed(f"expected attribute {name}")
        values.append(part[2:])
    return values


def _username(saslname: bytes) -> str:
    """RFC 5802 saslname: ``=2C`` is a comma, ``=3D`` an equals sign, any other ``=`` is an error."""
    text = saslname.decode("utf-8")
    if "=" in text.replace("=2C", "").replace("=3D", ""):
        raise _Failed("bad username encoding")
    return text.replace("=2C", ",").replace("=3D", "=")


def _client_first(message: bytes) -> tuple[bytes, bytes, str, bytes]:
    """Split a client-first message: (gs2 header, the bare message, user name, client nonce)."""
    flag, authzid, bare = (message.split(b",", 2) + [b"", b""])[:3]
    if flag not in (b"n", b"y"):
        raise _Failed("channel binding is not supported")
    if authzid:
        raise _Failed("authorization identities are not supported")
    user, nonce = _attributes(bare, "nr")
    if not nonce:
        raise _Failed("empty nonce")
    return flag + b",,", bare, _username(user), nonce


class _Conversation:
    """One SCRAM exchange: the client's first message answered, its proof not yet checked."""

    def __init__(self, keys: ScramKeys, user: bytes, client_first: bytes, nonce_suffix: bytes) -> None:
        self.gs2_header, self.client_first_bare, name, client_nonce = _client_first(client_first)
        # An unknown user gets a conversation all the same and fails only at the proof:
        # the replies do not tell which user names exist.
        self.user_matches = hmac.compare_digest(name.encode("utf-8"), user)
        self.keys = keys
        self.nonce = client_nonce + nonce_suffix
        self.server_first = b"r=%s,s=%s,i=%d" % (self.nonce, base64.b64encode(keys.salt), keys.iterations)
        self.proved = False
        self.skip_empty_exchange = False  # saslStart's option: answer done at the proof

    def verify(self, client_final: bytes) -> bytes:
        """Check the client's proof; the server-final message (``v=`` signature) if it holds."""
        without_proof, separator, proof_text = client_final.rpartition(b",p=")
        if not separator:
            raise _Failed("no proof")
        binding, nonce = _attributes(without_proof, "cr")
        if binding != base64.b64encode(self.gs2_header):
            raise _Failed("channel binding mismatch")
        if not hmac.compare_digest(nonce, self.nonce):
            raise _Failed("nonce mismatch")
        try:
            proof = base64.b64decode(proof_text, validate=True)
        except ValueError:
            raise _Failed("malformed proof") from None
        auth_message = b",".join((self.client_first_bare, self.server_first, without_proof))
        signature = _hmac(self.keys.stored_key, auth_message)
        if len(proof) != len(signature):
            raise _Failed("malformed proof")
        client_key = bytes(a ^ b for a, b in zip(proof, signature))
        # Both checks always run, so a wrong user name takes as long as a wrong password.
        key_matches = hmac.compare_digest(hashlib.sha1(client_key).digest(), self.keys.stored_key)
        if not (key_matches and self.user_matches):
            raise _Failed("wrong proof")
        self.proved = True
        return b"v=" + base64.b64encode(_hmac(self.keys.server_key, auth_message))


class _Connection:
    __slots__ = ("authenticated", "conversation", "conversation_id")

    def __init__(self) -> None:
        self.authenticated = False
        self.conversation: _Conversation | None = None
        self.conversation_id = 0


def _payload(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise _Failed("payload is not binary")


class AuthGate:
    """Which commands each connection may run, and the SCRAM-SHA-1 conversations that unlock them.

    nx runs commands on worker threads (one command at a time per connection), so
    the table of connections is guarded by a lock.
    """

    def __init__(self, credentials: Credentials, salt: bytes | None = None,
                 nonce: Callable[[], bytes] = lambda: base64.b64encode(os.urandom(24))) -> None:
        self._user = credentials.user.encode("utf-8")
        salt = salt if salt is not None else os.urandom(16)
        self._keys = ScramKeys.derive(password_digest(credentials.user, credentials.password), salt)
        self._nonce = nonce
        self._connections: dict[Any, _Connection] = {}
        self._lock = threading.Lock()

    def authenticated(self, connection_id: Any) -> bool:
        """Whether this connection has proved it knows the password."""
        with self._lock:
            state = self._connections.get(connection_id)
            return state is not None and state.authenticated

    def forget(self, connection_id: Any) -> None:
        """The connection closed: drop its state (a new connection starts unauthenticated)."""
        with self._lock:
            self._connections.pop(connection_id, None)

    def check(self, connection_id: Any, command: dict[str, Any] | None) -> dict[str, Any] | None:
        """None to let the server run ``command``; otherwise the reply to send instead.

        SASL commands are answered here. A connection that has not authenticated
        may run only :data:`BEFORE_AUTHENTICATION`; anything else is refused with
        code 13. The command's name is its document's first key, as in MongoDB.
        """
        name = next(iter(command), None) if isinstance(command, dict) else None
        if name in SASL:
            if connection_id is None:  # nobody to remember the outcome for
                return _error(17, "ProtocolError", "No connection to authenticate")
            with self._lock:
                state = self._connections.setdefault(connection_id, _Connection())
            return self._start(state, command) if name == "saslStart" else self._continue(state, command)
        if name in BEFORE_AUTHENTICATION or self.authenticated(connection_id):
            return None
        return unauthorized(name)

    def _start(self, state: _Connection, command: dict[str, Any]) -> dict[str, Any]:
        state.conversation = None
        if command.get("mechanism") != "SCRAM-SHA-1":
            return _error(334, "MechanismUnavailable",
                          f"Received authentication for mechanism {command.get('mechanism')} which is not enabled")
        try:
            conversation = _Conversation(self._keys, self._user, _payload(command.get("payload")), self._nonce())
        except (_Failed, ValueError):  # UnicodeDecodeError is a ValueError
            return AUTHENTICATION_FAILED
        options = command.get("options")
        conversation.skip_empty_exchange = isinstance(options, dict) and bool(options.get("skipEmptyExchange"))
        state.conversation = conversation
        state.conversation_id += 1
        return {"conversationId": state.conversation_id, "done": False, "payload": conversation.server_first, "ok": 1.0}

    def _continue(self, state: _Connection, command: dict[str, Any]) -> dict[str, Any]:
        conversation = state.conversation
        if conversation is None or command.get("conversationId") != state.conversation_id:
            state.conversation = None
            return _error(17, "ProtocolError", "No SASL session state found")
        if conversation.proved:  # the empty last step of a driver that did not ask to skip it
            state.conversation = None
            payload = command.get("payload")
            if not isinstance(payload, (bytes, str)) or payload:
                return AUTHENTICATION_FAILED
            state.authenticated = True
            return {"conversationId": state.conversation_id, "done": True, "payload": b"", "ok": 1.0}
        try:
            server_final = conversation.verify(_payload(command.get("payload")))
        except (_Failed, ValueError):
            state.conversation = None
            return AUTHENTICATION_FAILED
        if conversation.skip_empty_exchange:
            state.conversation = None
            state.authenticated = True
            return {"conversationId": state.conversation_id, "done": True, "payload": server_final, "ok": 1.0}
        return {"conversationId": state.conversation_id, "done": False, "payload": server_final, "ok": 1.0}
