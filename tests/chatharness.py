"""The chat's whole graph on a fake clock and the in-memory store, with fake sockets (no network).

:class:`ChatHarness` builds what a running chatd builds for the socket side
(registry, room states, events, receipts, history, writer, sessions,
membership, messages, signals and the dispatcher) on a ``Clock`` and a
``MemoryStore``, in the spirit of Synapse's ``HomeserverTestCase``; the room
rules are tested on it directly, fast. End-to-end tests keep what needs the
wire.

Users made with :meth:`ChatHarness.connect` are real accounts in the store
with real tokens (checked by the real ``Auth``), so their memberships, unread
counts and token refreshes behave as a running chatd's. The MemoryStore
answers at once, so a frame's whole effect (a join's history, a refusal) is
on the fake connection as soon as :meth:`ChatHarness.send` returns; only
messages wait for the writer's turn (:meth:`ChatHarness.flush`).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from types import SimpleNamespace

from twisted.internet.defer import Deferred, ensureDeferred, fail
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from chatd import errors
from chatd.accounts.auth import Auth
from chatd.accounts.loginguard import LoginGuard
from chatd.accounts.tokens import TokenIssuer
from chatd.chat import writer as writer_module
from chatd.chat.mentions import MentionResolver
from chatd.service import _mentioned
from chatd.chat.connection import IChatConnection
from chatd.chat import frames
from chatd.chat.dispatch import Dispatcher, refuse
from chatd.chat.reactions import Reactions
from chatd.chat.threads import Threads
from chatd.chat.events import LocalEvents
from chatd.chat.history import History
from chatd.chat.membership import Membership
from chatd.chat.messages import Messages
from chatd.chat.receipts import ReadReceipts
from chatd.chat.presence import LocalPresence
from chatd.chat.registry import Registry
from chatd.bus.events import BusEvents
from chatd.chat.roomstate import RoomBook
from chatd.chat.sequencer import Sequencer
from chatd.chat.sessions import Sessions
from chatd.chat.signals import Signals
from chatd.chat.writer import MessageWriter
from chatd.metrics import Metrics
from chatd.ratelimit import KeyedRateLimiter, Rate
from chatd.rooms.access import RoomAccess
from chatd.rooms.catalog import RoomCatalog
from chatd.rooms.direct import DirectRooms
from chatd.rooms.members import RoomMembers
from chatd.rooms.ownership import Ownership
from chatd.rooms.views import RoomViews
from chatd.storage.memory import MemoryStore
from chatd.storage.records import UserRecord

START = 1_714_564_800.0  # 2024-05-01T12:00:00Z
PING = b'{"type":"ping"}'
SECRET = b"chat-harness-secret-of-32-bytes!"
TOKEN_TTL = 3600


@implementer(IChatConnection)
class FakeConnection:
    """A socket as the chat sees it, recording the frames it is sent and how it is closed.

    The identity it is opened with (``user_id``, ``username``, ``jti``, token times) is
    the principal's; once open, ``sock`` is the chat's handle for it.
    """

    def __init__(self, user_id="u1", username="alice", jti="j1", expires_at=START + 3600, issued_at=START):
        self.user_id = user_id
        self.username = username
        self.jti = jti
        self.expires_at = expires_at
        self.issued_at = issued_at
        self.token = None  # the signed token, for users made by ChatHarness.connect
        self.sock = None
        self.sent: list[dict] = []
        self.droppable: list[dict] = []  # the frames of ``sent`` offered as droppable (typing, read)
        self.closes: list[tuple[int, str]] = []
        self.went_away = False
        self._taken = 0

    def send(self, payload, droppable=False):
        frame = json.loads(payload)
        self.sent.append(frame)
        if droppable:
            self.droppable.append(frame)

    def send_prepared(self, prepared, droppable=False):
        self.send(prepared, droppable)

    def send_prepared_together(self, prepared_messages):
        for prepared in prepared_messages:
            self.send_prepared(prepared)

    def close(self, code, reason):
        self.closes.append((code, reason))

    def going_away(self):
        self.went_away = True

    def types(self) -> list[str]:
        """The types of the frames received after ``hello``."""
        return [frame["type"] for frame in self.sent[1:]]

    def of_type(self, kind: str) -> list[dict]:
        """Every frame of type ``kind`` received so far, oldest first."""
        return [frame for frame in self.sent if frame["type"] == kind]

    def last(self, kind: str) -> dict:
        """The newest frame of type ``kind`` (AssertionError if there is none)."""
        found = self.of_type(kind)
        assert found, f"{self.username} received no {kind!r} frame; got {self.types()}"
        return found[-1]

    def take(self) -> list[dict]:
        """The frames received since the last ``take`` (or since the socket opened), forgotten here."""
        taken = self.sent[self._taken:]
        self._taken = len(self.sent)
        return taken


class FakeAuth:
    """What the sessions ask of the accounts (the ``refresh`` frame's token): answers set by the test
    in ``principals``, else those of ``accounts`` (the real Auth), else 401."""

    def __init__(self, accounts=None):
        self.principals: dict[str, object] = {}
        self.accounts = accounts

    def authenticate(self, token):
        if token in self.principals:
            answer = self.principals[token]
            return answer if isinstance(answer, Deferred) else _fired(answer)
        if self.accounts is not None:
            return self.accounts.authenticate(token)
        return fail(errors.unauthorized())


class ThreadlessHasher:
    """PasswordHasher's interface without bcrypt or threads (the harness makes users in the store)."""

    pending = 0

    def hash(self, password, key=""):
        return _fired(b"h:" + password.encode())

    def verify(self, password, hashed, key=""):
        return _fired(hashed == b"h:" + password.encode())


def _fired(value) -> Deferred:
    done: Deferred = Deferred()
    done.callback(value)
    return done


def fired(deferred):
    """The result of a Deferred (or coroutine) that has already fired, as everything on the MemoryStore
    does at once; raises its failure."""
    outcome = []
    ensureDeferred(deferred).addBoth(outcome.append)
    assert outcome, "the Deferred has not fired"
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    return outcome[0]


def principal(conn: FakeConnection, rooms=()) -> SimpleNamespace:
    """The principal a handshake would hand over for ``conn``'s identity."""
    user = UserRecord(conn.user_id, conn.username, f"{conn.username}@example.com", "user",
                      datetime(2024, 1, 1, tzinfo=timezone.utc), b"hash", rooms=tuple(rooms))
    claims = SimpleNamespace(sub=conn.user_id, jti=conn.jti, exp=conn.expires_at, iat=conn.issued_at,
                             expires_at=datetime.fromtimestamp(conn.expires_at, timezone.utc))
    return SimpleNamespace(user=user, claims=claims)


class ChatHarness:
    """The socket side of one chatd, wired as ``chatd.service`` wires it (see the module docstring)."""

    def __init__(self, clock: Clock, store=None, socket_rate: Rate = Rate(1000, 1000), max_rooms: int = 500,
                 network=None, node: str = "node-1") -> None:
        """With ``network`` (tests.fakebus.FakeBusNetwork), events go through chatd.bus.events.BusEvents
        as process ``node``: several harnesses on one network and one store are several chatd processes."""
        self.clock = clock
        self.store = store if store is not None else MemoryStore()
        self.metrics = Metrics()
        self.registry = Registry()
        self.rooms = RoomBook(self.store, pinned=self.registry.subscribers)
        self.local_events = LocalEvents(self.registry, self.rooms, lambda payload: payload, self.metrics)
        if network is None:
            self.events = self.local_events
            self.sequencer = Sequencer(self.store, self.rooms, self.events, clock)
        else:
            self.events = BusEvents(self.local_events, self.store, self.registry, self.rooms, node, clock,
                                    network.connect, network.leases_of)
            self.sequencer = self.events.sequencer
        self.presence = LocalPresence(self.registry, self.events) if network is None else \
            self.events.cluster_presence
        self.receipts = ReadReceipts(self.store, clock)
        self.history = History(self.store, self.rooms, self.sequencer, self.presence, self.receipts)
        self.writer = MessageWriter(self.store, self.rooms, clock, on_stored=self.sequencer.stored,
                                    catch_up=self.sequencer.catch_up, mentions=MentionResolver(self.store),
                                    on_mentioned=_mentioned(self.events))
        self.tokens = TokenIssuer(clock, TOKEN_TTL, SECRET)
        generous = Rate(1000, 1000)
        self.accounts = Auth(self.store, ThreadlessHasher(), self.tokens, clock, KeyedRateLimiter(generous, clock),
                             LoginGuard(generous, clock), self.presence, self.events)
        self.auth = FakeAuth(self.accounts)
        self.sessions = Sessions(self.store, self.registry, self.events, self.presence, self.auth, clock, socket_rate)
        self.access = RoomAccess(self.store)
        self.ownership = Ownership(self.store, self.events)
        self.messages = Messages(self.registry, self.writer, clock, self.metrics, refuse)
        self.threads = Threads(self.store, self.rooms, self.events, self.messages)
        self.reactions = Reactions(self.store, self.rooms, self.events, self.access)
        self.dispatcher = Dispatcher(
            self.sessions,
            Membership(self.store, self.registry, self.presence, self.sequencer, self.history, self.receipts,
                       self.events, clock,
                       self.metrics.refused, self.access, self.ownership, max_rooms),
            self.messages,
            Signals(self.registry, self.rooms, self.receipts, self.events),
            clock, socket_rate, self.metrics,
            {frames.Reply: self.threads.reply, frames.React: self.reactions.react},
        )
        self.views = RoomViews(self.store, self.rooms, self.presence)
        self.catalog = RoomCatalog(self.store, self.access, self.views, self.sequencer, self.events, clock)
        self.members = RoomMembers(self.store, self.access, self.views, self.ownership, self.sequencer,
                                   self.receipts, self.events, clock)
        self.direct = DirectRooms(self.store, self.views, self.sequencer, self.receipts, self.events, clock)

    def open(self, conn: FakeConnection | None = None, rooms=()) -> FakeConnection:
        """A socket for ``conn``'s user passes the handshake (a member of ``rooms``)."""
        conn = conn or FakeConnection()
        conn.sock = self.dispatcher.opened(conn, principal(conn, rooms))
        return conn

    def user(self, username: str) -> UserRecord:
        """``username``'s account in the store (made on first use; the first one made is the admin)."""
        found = fired(self.store.find_user_by_login(username))
        if found is not None:
            return found
        created_at = datetime.fromtimestamp(self.clock.seconds(), timezone.utc)
        return fired(self.store.create_user(username, f"{username}@example.com", b"h:correct horse", created_at))

    def token(self, username: str) -> str:
        """A fresh token for ``username``, as a login now would issue (TOKEN_TTL seconds of life)."""
        user = self.user(username)
        return self.tokens.issue(user.id, user.username, user.role).token

    def connect(self, username: str, token: str | None = None) -> FakeConnection:
        """A socket of ``username`` (made in the store on first use) passes the handshake with ``token``
        (a fresh one by default): the real Auth reads the user, their rooms and the token's claims."""
        token = token or self.token(username)
        found = fired(self.accounts.authenticate(token))
        conn = FakeConnection(found.user.id, found.user.username, found.claims.jti, found.claims.exp,
                              found.claims.iat)
        conn.token = token
        conn.sock = self.dispatcher.opened(conn, found)
        return conn

    def received(self, conn: FakeConnection, payload: bytes, is_binary: bool = False):
        return self.dispatcher.received(conn.sock, payload, is_binary)

    def send(self, conn: FakeConnection, **frame) -> None:
        """A frame from ``conn`` (keyword arguments are its fields)."""
        self.received(conn, json.dumps(frame).encode())

    def join(self, conn: FakeConnection, room: str = "lobby", **extra) -> dict:
        """``conn`` joins ``room`` (``extra``: ``since``); returns the ``joined`` frame it was answered."""
        before = len(conn.of_type("joined"))
        self.send(conn, type="join", room=room, **extra)
        answers = conn.of_type("joined")
        assert len(answers) > before, f"no joined for {room}: {conn.sent[-1]}"
        return answers[-1]

    def in_lobby(self, *usernames: str) -> list[FakeConnection]:
        """A socket for each user that joined the lobby, with what it received so far taken."""
        sockets = [self.connect(name) for name in usernames]
        for conn in sockets:
            self.join(conn)
        for conn in sockets:
            conn.take()
        return sockets

    def say(self, conn: FakeConnection, text: str, room: str = "lobby", client_id: str | None = None) -> dict:
        """``conn`` sends a message and the writer stores it; returns the ``ack`` (or the ``error``) it got."""
        frame = {"type": "message", "room": room, "text": text}
        if client_id is not None:
            frame["client_id"] = client_id
        answered = len(conn.of_type("ack")) + len(conn.of_type("error"))
        self.send(conn, **frame)
        self.flush()
        answers = [f for f in conn.sent if f["type"] in ("ack", "error")]
        assert len(answers) > answered, f"no ack or error for {text!r}"
        return answers[-1]

    def ping(self, conn: FakeConnection, times: int = 1) -> None:
        for _ in range(times):
            self.received(conn, PING)

    def control_frame_allowed(self, conn: FakeConnection) -> bool:
        return self.dispatcher.control_frame_allowed(conn.sock)

    def closed(self, conn: FakeConnection) -> None:
        self.dispatcher.closed(conn.sock)

    def flush(self) -> None:
        """Let the writer store what was sent (MemoryStore answers at once), batch after batch."""
        self.clock.pump([writer_module.BATCH_WINDOW] * 5)


class ChatTestCase(SynchronousTestCase):
    """A test case with ``self.chat``, a ChatHarness on ``self.clock`` at START; class attributes tune it."""

    socket_rate = Rate(1000, 1000)
    max_rooms = 500

    def make_store(self):
        return MemoryStore()

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(START)
        self.store = self.make_store()
        self.chat = ChatHarness(self.clock, self.store, self.socket_rate, self.max_rooms)
        self.registry = self.chat.registry
