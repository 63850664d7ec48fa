"""Wiring: the object graph behind one chatd process, as a MultiService.

Children start in order (secret, embedded store, store, store cache, password
pool, message writer, listeners, collector tuning) and stop in reverse, so
nothing listens before it can answer and the store outlives the last request.
"""

from __future__ import annotations

import gc

from prometheus_client.twisted import MetricsResource
from twisted.application.service import MultiService, Service
from twisted.internet.defer import DeferredList

from chatd.accounts import secret
from chatd.accounts.auth import Accounts
from chatd.chat.service import ChatService
from chatd.chat.editing import MessageEditor
from chatd.files.uploads import Files
from chatd.chat.admission import Admission, SocketLimits
from chatd.chat.history import History
from chatd.chat.receipts import ReadReceipts
from chatd.accounts.loginguard import LoginGuard
from chatd.metrics import Metrics
from chatd.chat.registry import Registry
from chatd.chat.roomstate import RoomBook
from chatd.chat.writer import MessageWriter
from chatd.config import Config
from chatd.accounts.passwords import PasswordHasher
from chatd.ratelimit import KeyedRateLimiter
from chatd.storage.cached import CachedStore
from chatd.storage.embedded import EmbeddedStore
from chatd.storage.mongo import MongoStore
from chatd.accounts.tokens import TokenIssuer
from chatd.web.api import ApiResource, ApiRoutes, UploadGate
from chatd.web.cors import OriginPolicy
from chatd.web.health import HealthResource
from chatd.web.site import ListeningService, build_site
from chatd.web.upgrade import UpgradeRouter, ws_resource
from chatd.web.ws import ChatFactory, prepare


class _SecretLoader(Service):
    """Loads (or generates) the token secret at start: file I/O does not belong in makeService."""

    name = "secret"

    def __init__(self, data_dir: str, tokens: TokenIssuer) -> None:
        self._data_dir = data_dir
        self._tokens = tokens

    def startService(self) -> None:
        super().startService()
        self._tokens.set_secret(secret.load_or_create(self._data_dir))


class _CloseSocketsOnStop(Service):
    """Says goodbye (1001) to every WebSocket before the rest stops, so clients reconnect at once."""

    def __init__(self, chat) -> None:
        self._chat = chat

    def stopService(self):
        super().stopService()
        self._chat.close_all()


class _FlushOnStop(Service):
    """Writes what the message writer (room heads) and the read receipts still hold before the store stops."""

    name = "writer"

    def __init__(self, writer: MessageWriter, receipts: ReadReceipts) -> None:
        self._writer = writer
        self._receipts = receipts

    def stopService(self):
        super().stopService()
        return DeferredList([self._writer.stop(), self._receipts.stop()])


class _CollectorTuning(Service):
    """Fewer, cheaper garbage-collector pauses.

    Every message makes many short-lived objects; CPython's default thresholds
    run full collections often enough to stall delivery by tens of milliseconds
    with thousands of connections. Objects alive after start-up are frozen out
    of collection, and young generations are collected less often.
    """

    name = "gc"

    def startService(self) -> None:
        super().startService()
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)


# An upload's body may be --max-upload bytes plus its multipart framing (any other body: 64 KiB).
MULTIPART_FRAMING = 64 * 1024


class ChatdService(MultiService):
    """One chatd: ``store``, ``accounts``, ``listener`` (and ``embedded`` when no --mongo)."""

    def __init__(self, config: Config, reactor) -> None:
        super().__init__()
        self.config = config
        tokens = TokenIssuer(reactor, config.token_ttl, config.jwt_secret)
        if config.jwt_secret is None:
            _SecretLoader(config.data_dir, tokens).setServiceParent(self)

        self.embedded = None
        if config.mongo is None:
            self.embedded = EmbeddedStore(reactor, config.data_dir)
            self.embedded.setServiceParent(self)
            self.store = MongoStore(reactor, self.embedded.uri, timeout=config.store_timeout)
        else:
            self.store = MongoStore(reactor, lambda: config.mongo, timeout=config.store_timeout)
        self.store.setServiceParent(self)
        self.metrics = metrics = Metrics()
        self.store.metrics = metrics  # times every store operation
        store = CachedStore(self.store, reactor)
        store.setServiceParent(self)  # after the store: starts polling once the store is started

        hasher = PasswordHasher(reactor, cost=config.bcrypt_cost)
        hasher.setServiceParent(self)
        self.accounts = Accounts(
            store,
            hasher,
            tokens,
            reactor,
            address_limiter=KeyedRateLimiter(config.auth_rate, reactor),
            login_guard=LoginGuard(config.auth_rate, reactor),
        )
        registry = Registry()
        metrics.watch(registry, hasher)
        rooms = RoomBook(store)
        receipts = ReadReceipts(store, reactor)
        history = History(store, rooms, registry, receipts)
        self.writer = MessageWriter(store, rooms, reactor)
        _FlushOnStop(self.writer, receipts).setServiceParent(self)  # after the store: stops before it
        self.chat = ChatService(store, self.accounts, registry, rooms, self.writer, history, reactor,
                                config.socket_rate, prepare=prepare, metrics=metrics, receipts=receipts,
                                max_rooms=config.max_rooms_per_user)
        store.changes = self.chat  # bans, deletions, revocations made elsewhere close sockets here
        files = Files(store, self.writer, reactor, config.max_upload, config.upload_quota, metrics.refused)
        editor = MessageEditor(store, rooms, self.chat.deliver, reactor, files)
        origins = OriginPolicy(config.allowed_origins)
        admission = Admission(
            SocketLimits(config.max_sockets_per_user, config.max_sockets_per_address, config.handshake_rate),
            reactor, metrics.refused)
        websocket = ChatFactory(self.chat, self.accounts, origins, admission, config.ping_interval)
        site = build_site(
            config.static,
            {
                b"api": ApiResource(ApiRoutes(self.accounts, history, editor, files), origins),
                b"healthz": HealthResource(self.store),
                b"ws": ws_resource(websocket),
                b"metrics": MetricsResource(metrics.registry),
            },
            metrics,
            max_body=config.max_upload + MULTIPART_FRAMING,
            gate=UploadGate(self.accounts, files, origins),
            reactor=reactor,
        )
        self.listener = ListeningService(reactor, config.listen, UpgradeRouter(reactor, site, websocket))
        self.listener.setServiceParent(self)
        _CloseSocketsOnStop(self.chat).setServiceParent(self)  # stops first: before the listener and the store
        _CollectorTuning().setServiceParent(self)
