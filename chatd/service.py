"""Wiring: the object graph behind one chatd process, built bottom-up, as a MultiService.

Every object gets its collaborators through its constructor: reading a
constructor tells who depends on whom. Children start in order (secret,
embedded store, store, bus, change poller, password pool, writer flush, speed-ups,
listeners, collector tuning) and stop in reverse, so nothing listens before it can answer
and the store outlives the last request.
"""

from __future__ import annotations

import gc
import uuid

from prometheus_client.twisted import MetricsResource
from twisted.application.service import MultiService, Service
from twisted.internet.defer import DeferredList

from chatd.accounts import secret
from chatd.accounts.auth import Auth
from chatd.accounts.loginguard import LoginGuard
from chatd.accounts.moderation import Moderation
from chatd.accounts.passwords import PasswordHasher
from chatd.accounts.tokens import TokenIssuer
from chatd.accounts.users import Users
from chatd.bus.events import BusEvents
from chatd.bus.redis import RedisBus
from chatd.chat.admission import Admission, SocketLimits
from chatd.chat.dispatch import Dispatcher, refuse
from chatd.chat import frames
from chatd.chat.editing import MessageEditor
from chatd.chat.reactions import Reactions
from chatd.chat.threads import Threads
from chatd.chat.events import LocalEvents
from chatd.chat.history import History
from chatd.chat.membership import Membership
from chatd.chat.mentions import MentionResolver
from chatd.chat.presence import LocalPresence
from chatd.chat.messages import Messages
from chatd.chat.receipts import ReadReceipts
from chatd.chat.registry import Registry
from chatd.chat.roomstate import RoomBook
from chatd.chat.search import Search
from chatd.chat.sequencer import Sequencer
from chatd.chat.sessions import Sessions
from chatd.chat.signals import Signals
from chatd.chat.writer import MessageWriter
from chatd.config import Config
from chatd.files.uploads import Files
from chatd.metrics import Metrics
from chatd.ratelimit import KeyedRateLimiter
from chatd.rooms.access import RoomAccess
from chatd.rooms.catalog import RoomCatalog
from chatd.rooms.direct import DirectRooms
from chatd.rooms.members import RoomMembers
from chatd.rooms.ownership import Ownership
from chatd.rooms.views import RoomViews
from chatd.storage.cached import CachedStore
from chatd.storage.changes import ChangePoller
from chatd.storage.embedded import EmbeddedStore
from chatd.storage.mongo import MongoStore
from chatd.web.api.auth import AuthRoutes
from chatd.web.api.files import FileRoutes, UploadGate
from chatd.web.api.resource import ApiResource
from chatd.web.api.rooms import RoomRoutes
from chatd.web.api.search import SearchRoutes
from chatd.web.api.users import UserRoutes
from chatd.web.cors import OriginPolicy
from chatd.web.health import HealthResource
from chatd.web.site import ListeningService, build_site
from chatd.web.speedups import Speedups
from chatd.web.upgrade import ws_resource
from chatd.web.ws import ChatFactory, prepare

# An upload's body may be --max-upload bytes plus its multipart framing (any other body: 64 KiB).
MULTIPART_FRAMING = 64 * 1024


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

    def __init__(self, events: LocalEvents) -> None:
        self._events = events

    def stopService(self):
        super().stopService()
        self._events.server_stopping()


def _mentioned(events):
    """The writer's ``on_mentioned``: a stored message's mentions told through the events."""
    return lambda m: events.mentioned(m.room, m.seq, m.user_id, m.user, m.text or "", m.mention_ids)


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
    """Fewer, cheaper garbage-collector pauses (a start-up step; off with ``CHATD_GC_TUNING=0``).

    Every message makes many short-lived objects; CPython's default thresholds
    run full collections often enough to stall delivery by tens of milliseconds
    with thousands of connections (rooms p99 45 → 35 ms, docs/PERFORMANCE.md).
    Objects alive after start-up are frozen out of collection, and young
    generations are collected less often; stopping undoes both.
    """

    name = "gc"

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._thresholds: tuple[int, ...] | None = None

    def startService(self) -> None:
        super().startService()
        if self.enabled:
            self._thresholds = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(50_000, 50, 100)

    def stopService(self):
        super().stopService()
        if self._thresholds is not None:
            gc.set_threshold(*self._thresholds)
            gc.unfreeze()
            self._thresholds = None


class ChatdService(MultiService):
    """One chatd. Tests reach in through ``store``, ``registry``, ``chat``, ``writer``, ``listener``, ``embedded``, ``bus``.

    ``worker`` (a :class:`chatd.workers.role.WorkerRole`) makes it one of ``--workers``: it listens on
    the sockets its parent bound, and its ``/metrics`` shows every worker's figures.
    """

    def __init__(self, config: Config, reactor, worker=None) -> None:
        super().__init__()
        self.config = config
        self.registry = registry = Registry()  # who is connected where: the chat's, read by metrics and accounts
        # With --auth-rate 0 (every client behind one proxy address, say) no address has a share to keep to.
        hasher = PasswordHasher(reactor, cost=config.bcrypt_cost, per_key=None if config.auth_rate.unlimited else 4)
        self.metrics = metrics = Metrics(registry, hasher)
        tokens = TokenIssuer(reactor, config.token_ttl, config.jwt_secret)
        if config.jwt_secret is None:
            _SecretLoader(config.data_dir, tokens).setServiceParent(self)

        # -- the store ------------------------------------------------------
        self.embedded = None
        if config.mongo is None:
            self.embedded = EmbeddedStore(reactor, config.data_dir)
            self.embedded.setServiceParent(self)
            uri = self.embedded.uri
        else:
            uri = lambda: config.mongo  # noqa: E731
        self.store = MongoStore(reactor, uri, timeout=config.store_timeout, metrics=metrics)
        self.store.setServiceParent(self)
        store = CachedStore(self.store, reactor)

        # -- rooms, and the events that reach their sockets ------------------
        rooms = RoomBook(store, pinned=registry.subscribers)  # a room someone here joined stays in memory
        local = events = LocalEvents(registry, rooms, prepare, metrics)
        self.bus = None
        if config.redis is None:
            sequencer = Sequencer(store, rooms, events, reactor)
            presence = LocalPresence(registry, events)
        else:
            # The other chatd processes' events, over the bus. It starts after the store (what it
            # missed is read from there) and stops after the listeners.
            def connect(on_message, on_state):
                self.bus = RedisBus(reactor, config.redis, on_message=on_message, on_state=on_state)
                self.bus.setServiceParent(self)
                return self.bus

            events = BusEvents(local, store, registry, rooms, uuid.uuid4().hex, reactor, connect)
            sequencer, presence = events.sequencer, events.cluster_presence
        receipts = ReadReceipts(store, reactor)
        history = History(store, rooms, sequencer, presence, receipts)
        self.writer = MessageWriter(store, rooms, reactor, on_stored=sequencer.stored, catch_up=sequencer.catch_up,
                                    mentions=MentionResolver(store, store.user_named), on_mentioned=_mentioned(events))
        _FlushOnStop(self.writer, receipts).setServiceParent(self)  # after the store: stops before it

        # -- who may do what in a room, and rooms as records -----------------
        access = RoomAccess(store)  # the one rule every path that reads or sends room data asks
        ownership = Ownership(store, events)
        views = RoomViews(store, rooms, presence)

        # -- accounts --------------------------------------------------------
        hasher.setServiceParent(self)
        auth = Auth(store, hasher, tokens, reactor, KeyedRateLimiter(config.auth_rate, reactor),
                    LoginGuard(config.auth_rate, reactor), presence, events)
        users = Users(store, hasher, reactor, presence, events, ownership)
        moderation = Moderation(store, events)

        # -- the chat on the socket ------------------------------------------
        # The change feed's account events are this process's alone: every process reads the feed.
        sessions = Sessions(store, registry, local, presence, auth, reactor, config.socket_rate)
        ChangePoller(self.store, store, sessions, reactor).setServiceParent(self)  # after the store
        messages = Messages(registry, self.writer, reactor, metrics, refuse)
        threads = Threads(store, rooms, events, messages)
        reactions = Reactions(store, rooms, events, access)
        self.chat = Dispatcher(
            sessions,
            Membership(store, registry, presence, sequencer, history, receipts, events, reactor, metrics.refused,
                       access, ownership, config.max_rooms_per_user),
            messages,
            Signals(registry, rooms, receipts, events),
            reactor, config.socket_rate, metrics,
            {frames.Reply: threads.reply, frames.React: reactions.react},
        )
        files = Files(store, self.writer, reactor, config.max_upload, access, config.upload_quota, metrics.refused)
        editor = MessageEditor(store, rooms, events, reactor, access, files)
        room_routes = RoomRoutes(
            auth, history, editor, access, RoomCatalog(store, access, views, sequencer, events, reactor),
            RoomMembers(store, access, views, ownership, sequencer, receipts, events, reactor),
            DirectRooms(store, views, sequencer, receipts, events, reactor), threads, reactions)

        # -- the web edge ----------------------------------------------------
        origins = OriginPolicy(config.allowed_origins)
        admission = Admission(
            SocketLimits(config.max_sockets_per_user, config.max_sockets_per_address, config.handshake_rate),
            reactor, metrics.refused)
        websocket = ChatFactory(self.chat, auth, origins, admission, metrics, config.ping_interval,
                                proxies=config.trusted_proxies)
        api = ApiResource(AuthRoutes(auth), UserRoutes(auth, users, moderation), room_routes,
                          FileRoutes(auth, files), origins, SearchRoutes(auth, Search(store, access)))
        site = build_site(
            config.static,
            {b"api": api, b"healthz": HealthResource(self.store, self.bus), b"ws": ws_resource(websocket),
             b"metrics": MetricsResource(metrics.registry) if worker is None
             else worker.metrics_page(reactor, metrics.registry)},
            metrics,
            max_body=config.max_upload + MULTIPART_FRAMING,
            gate=UploadGate(auth, files, origins),
            reactor=reactor,
            request_deadline=config.request_deadline,
            trusted_proxies=config.trusted_proxies,
        )
        self.site = site  # tests/test_openapi.py walks its routes
        speedups = Speedups(config.speedups, reactor, site, websocket, tokens)
        speedups.setServiceParent(self)  # before the listener, which serves speedups.front
        self.listener = ListeningService(reactor if worker is None else worker.adopting(reactor), config.listen,
                                         speedups.front)
        self.listener.setServiceParent(self)
        if worker is not None:
            worker.own_metrics(reactor, metrics.registry).setServiceParent(self)
        _CloseSocketsOnStop(events).setServiceParent(self)  # stops first: before the listener and the store
        _CollectorTuning(config.gc_tuning).setServiceParent(self)
