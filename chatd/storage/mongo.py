"""The MongoDB store: the only place that talks to txmongo.

``MongoStore`` owns the connection, the indexes and the timeout on every
operation; the queries live in ``mongo_users``, ``mongo_chat`` and ``mongo_rooms``. txmongo
queues requests while it reconnects and would otherwise wait forever, so an
unreachable store surfaces as :class:`StoreUnavailable` (503) instead of a hung
request. txmongo reconnects by itself, at most ``max_delay`` seconds apart.

The store's URI may hold a password (the embedded store's always does): it is
handed to txmongo and never logged.
"""

from __future__ import annotations

import time
from typing import Callable

from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions
from pymongo.errors import ConnectionFailure, DuplicateKeyError, OperationFailure
from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet import error as net_error
from twisted.internet.task import deferLater
from twisted.logger import Logger
from txmongo import filter as qf
from txmongo.connection import ConnectionPool
from txmongo.errors import TimeExceeded
from zope.interface import implementer

from chatd.storage.interface import IStore
from chatd.storage.mongo_chat import ChatQueries
from chatd.storage.mongo_rooms import RoomQueries
from chatd.storage.mongo_threads import ThreadQueries
from chatd.storage.mongo_files import FileQueries
from chatd.storage.mongo_schema import SchemaMigration
from chatd.storage.mongo_search import SearchIndex
from chatd.storage.mongo_users import UserQueries, duplicate_field
from chatd.storage.records import DuplicateKey, StoreUnavailable
from chatd.storage.util import returns_deferred

# Failures that mean "could not reach the store", as opposed to a refused write.
_UNREACHABLE = (
    defer.TimeoutError,
    TimeExceeded,
    net_error.ConnectionLost,
    net_error.ConnectionDone,
    net_error.ConnectError,
    ConnectionFailure,  # AutoReconnect and friends: txmongo lost the server mid-request
)


# MongoDB's Unauthorized and AuthenticationFailed: the store did not accept chatd's login.
_REFUSED = frozenset({13, 18})


def _ascending(*fields: str):
    spec = qf.ASCENDING(fields[0])
    for field in fields[1:]:
        spec = spec + qf.ASCENDING(field)
    return qf.sort(spec)


@implementer(IStore)
class MongoStore(
    UserQueries, ChatQueries, RoomQueries, ThreadQueries, FileQueries, SchemaMigration, SearchIndex, Service
):
    """IStore over txmongo; connects in ``startService``, creates its indexes, retries until it can."""

    name = "store"
    _log = Logger()

    def __init__(
        self,
        reactor,
        uri: Callable[[], str],
        database: str | None = None,
        timeout: float = 5.0,
        max_delay: float = 2.0,
        metrics=None,
        sweep: bool = True,
    ) -> None:
        self._reactor = reactor
        # Whether this process indexes what nobody is indexing (chatd.storage.mongo_search): a chatd does; a
        # chatd-admin command, in and out in seconds, leaves it to the chatd that serves the store.
        self._sweeps = sweep
        self._uri = uri
        self._database_name = database
        self.timeout = timeout
        self._max_delay = max_delay
        self._pool: ConnectionPool | None = None
        self._db = None
        self.ready = False
        self._indexing: defer.Deferred | None = None
        self._metrics = metrics  # a chatd.metrics.Metrics, to time every operation
        self._refused_logged_at: float | None = None
        self._in_flight: set[defer.Deferred] = set()  # operations not answered yet: cancelled at stop
        self._open = False  # between startService and stopService

    # -- lifecycle ---------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        codec = CodecOptions(tz_aware=True, uuid_representation=UuidRepresentation.STANDARD)
        self._pool = ConnectionPool(self._uri(), max_delay=self._max_delay, codec_options=codec)
        self._db = self._pool[self._database_name or self._pool.uri["database"] or "chatd"]
        self._open = True
        self._indexing = defer.ensureDeferred(self._create_indexes_until_done())

    async def stopService(self) -> None:
        super().stopService()
        self._open = False  # a request still being served gets StoreUnavailable, not an operation nobody answers
        if self._indexing is not None:
            self._indexing.cancel()
        self._stop_sweeping()
        if self._indexer is not None:  # what it had not indexed stays ix 0: a running process sweeps it
            self._indexer.cancel()
        if self._pool is not None:
            await self._pool.disconnect()
        # An operation still waiting for a connection is not failed by the disconnect: fail it now
        # (StoreUnavailable to its caller), so neither it nor its timeout outlives the store.
        for operation in list(self._in_flight):
            operation.cancel()

    async def _create_indexes_until_done(self) -> None:
        delay = 0.2
        while self.running:
            try:
                await self._create_indexes()
            except StoreUnavailable:
                self._log.info("store not reachable yet; retrying index creation in {delay}s", delay=delay)
                await deferLater(self._reactor, delay)
                delay = min(delay * 2, self._max_delay)
            else:
                self.ready = True
                self._log.info("store ready")
                return

    async def _create_indexes(self) -> None:
        db = self._db
        indexes = [
            (db.users, _ascending("username_key"), {"unique": True, "name": "username_key_unique"}),
            (db.users, _ascending("email_key"), {"unique": True, "name": "email_key_unique"}),
            # Revoked tokens only matter until they would have expired anyway.
            (db.revoked_tokens, _ascending("expires_at"), {"expireAfterSeconds": 0, "name": "expires_at_ttl"}),
            # The change feed is polled every few seconds: an hour of it is plenty.
            (db.user_changes, _ascending("expires_at"), {"expireAfterSeconds": 0, "name": "expires_at_ttl"}),
            # (room, seq) is unique through _id = "room:seq"; this one makes client_id idempotent.
            (db.messages, _ascending("dedupe"), {"unique": True, "name": "dedupe_unique"}),
            (db.memberships, _ascending("user_id"), {"name": "user_id"}),
            # "Seen by": a room's read positions (GET /api/rooms/{room}/reads).
            (db.memberships, _ascending("room"), {"name": "room"}),
            # A renamed or deleted user's messages are found by author to show the new name.
            (db.messages, _ascending("user_id"), {"name": "user_id"}),
            # A thread's replies, paged by seq (GET /api/rooms/{room}/messages/{seq}/thread).
            (db.messages, _ascending("room", "reply_to", "seq"), {"name": "room_reply_to_seq"}),
            # Search on any store: postings by word prefix, newest first (ties: room, seq); the unindexed.
            # (An edit deletes a message's postings by _id, "room:seq:word".)
            (db.postings, qf.sort(qf.ASCENDING("w") + qf.DESCENDING("t") + qf.DESCENDING("r") + qf.DESCENDING("s")),
             {"name": "w_t_r_s"}),
            (db.postings, _ascending("k"), {"name": "k"}),  # a common word, one day at a time
            (db.postings, _ascending("rk"), {"name": "rk"}),  # a common word in a few rooms, room by room
            (db.messages, _ascending("ix"), {"name": "ix"}),
            # GridFS reads a file's chunks by (files_id, n).
            (db.files.chunks, _ascending("files_id", "n"), {"unique": True, "name": "files_id_n"}),
        ]
        for collection, keys, options in indexes:
            await self._call(collection.create_index, keys, **options)
        await self._init_admin_seats()
        await self.migrate()
        if self._sweeps:
            self._start_sweeping()

    async def _call(self, operation, *args, **kwargs):
        """Run one txmongo operation within the timeout, translating failures."""
        if self._db is None or not self._open:
            raise StoreUnavailable("store not started, or stopped")
        started = time.perf_counter()
        try:
            d = defer.maybeDeferred(operation, *args, **kwargs)
            self._in_flight.add(d)
            d.addBoth(self._answered, d)
            return await d.addTimeout(self.timeout, self._reactor)
        except DuplicateKeyError as e:
            raise DuplicateKey(duplicate_field(e.details or {})) from None
        except OperationFailure as e:
            if e.code not in _REFUSED:
                raise
            self._login_refused()
            raise StoreUnavailable("not authorized") from None
        except _UNREACHABLE as e:
            raise StoreUnavailable(type(e).__name__) from None
        except defer.CancelledError:
            if not self._open:  # cancelled by stopService: the store went away under the request
                raise StoreUnavailable("stopped") from None
            raise  # cancelled by the caller (the client left): stays a cancellation, which nobody reports
        finally:
            if self._metrics is not None:
                self._metrics.store_latency.labels(operation.__name__).observe(time.perf_counter() - started)

    def _answered(self, result, operation: defer.Deferred):
        self._in_flight.discard(operation)
        return result

    def _login_refused(self) -> None:
        """The store refused a command as unauthenticated: log in again on a new connection.

        txmongo uses a connection even when its login failed (a wrong password, or
        a store that went away mid-login), and would then be refused forever;
        dropping it makes txmongo reconnect, and log in first.
        """
        now = self._reactor.seconds()
        if self._refused_logged_at is None or now - self._refused_logged_at > 60:
            self._refused_logged_at = now
            self._log.warn("the store refused chatd's login or a command as unauthorized (a wrong user or password "
                           "in the store URI, or a user without the rights chatd needs); reconnecting")
        for connection in self._pool.getprotocols():
            if connection.instance is not None and connection.instance.transport is not None:
                connection.instance.transport.loseConnection()

    @returns_deferred
    async def ping(self) -> None:
        await self._call(self._db.command, "ping")
