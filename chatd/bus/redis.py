"""``RedisBus``: chatd's connection to a Redis (``--redis``, or the embedded bus), as a service.

Two connections (:mod:`chatd.bus.link`, :mod:`chatd.bus.protocol`): a
subscriber that calls ``on_message(channel, payload)`` for every message on
``channels``, and one for commands (PUBLISH, pipelined batches, scripts).
Both reconnect within about a second and notice a silent Redis within a few
seconds (``ping_interval + ping_timeout``). ``on_state(up)`` is called on every
change: ``True`` once both connections are ready and the subscriptions are
confirmed (after each reconnection too, so a listener knows to catch up on
what it may have missed), ``False`` when either is lost. Stopping the service
calls neither.

While the command connection is down, commands fail at once with
:class:`BusUnavailable` rather than wait; a command in flight when it is lost
fails the same way, at the latest when the watchdog gives the connection up.
The bus carries bytes; what they mean is ``chatd.bus.events``'s business.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from twisted.application.service import Service
from twisted.internet import defer
from twisted.logger import Logger

import txredisapi
from chatd.bus.address import RedisAddress
from chatd.bus.link import Link
from chatd.bus.protocol import CommandConnection, SubscriberConnection

CHANNEL = b"chatd:events"


class BusUnavailable(Exception):
    """The bus cannot run a command now: Redis is unreachable, or the connection was lost under it."""


class BusCommandError(Exception):
    """Redis answered a command with an error (``WRONGTYPE ...``, ``NOSCRIPT ...``): the message is Redis's."""


class RedisBus(Service):
    """The bus over one Redis; see the module docstring."""

    name = "bus"
    _log = Logger()

    def __init__(self, reactor, url: str, on_message: Callable[[bytes, bytes], object],
                 on_state: Callable[[bool], object], channels: Iterable[bytes] = (CHANNEL,), *,
                 ping_interval: float = 2.0, ping_timeout: float = 1.5, max_retry_delay: float = 1.0) -> None:
        self.address = RedisAddress.parse(url)  # a bad URL fails here, in makeService, with no I/O
        self._reactor = reactor
        self._on_message = on_message
        self._on_state = on_state
        self.channels = tuple(channels)
        self._ping = (ping_interval, ping_timeout)
        self._max_retry_delay = max_retry_delay
        self._commands: Link | None = None
        self._subscriber: Link | None = None
        self._up = False

    @property
    def up(self) -> bool:
        """Both connections ready and every channel's subscription confirmed."""
        return self._up

    def startService(self) -> None:
        super().startService()
        endpoint = self.address.endpoint(self._reactor)
        reactor, address, (interval, timeout) = self._reactor, self.address, self._ping

        def link(name: str, build) -> Link:
            return Link(reactor, endpoint, build, name, address.safe, on_ready=self._ready, on_lost=self._lost,
                        max_delay=self._max_retry_delay)

        self._commands = link("command", lambda owner: CommandConnection(reactor, owner, address, interval, timeout))
        self._subscriber = link("subscriber", lambda owner: SubscriberConnection(
            reactor, owner, address, interval, timeout, self.channels, self._on_message))
        self._log.info("bus: connecting to {redis}", redis=address.safe)
        self._commands.start()
        self._subscriber.start()

    def stopService(self) -> defer.Deferred:
        """Close both connections (no on_state call); fires once they are closed."""
        super().stopService()
        self._up = False
        links = [link for link in (self._commands, self._subscriber) if link is not None]
        return defer.gatherResults([link.stop() for link in links], consumeErrors=True)

    # -- state ----------------------------------------------------------------
    def _ready(self, _protocol) -> None:
        self._changed(None)

    def _lost(self, reason) -> None:
        self._changed(reason)

    def _changed(self, reason) -> None:
        up = bool(self.running and self._commands.ready and self._subscriber.ready)
        if up == self._up or not self.running:
            return
        self._up = up
        if up:
            self._log.info("bus up: {redis}, subscribed to {channels}", redis=self.address.safe,
                           channels=", ".join(c.decode("utf-8", "replace") for c in self.channels))
        else:
            self._log.warn("bus down: lost {redis} ({cause})", redis=self.address.safe,
                           cause=reason.getErrorMessage() if reason is not None else "?")
        try:
            self._on_state(up)
        except Exception:
            self._log.failure("the bus's on_state({up}) failed", up=up)

    # -- commands -------------------------------------------------------------
    def execute(self, *args) -> defer.Deferred:
        """Run one Redis command (``HINCRBY``, ``SET k v PX 10000``, ...); fires with its reply, undecoded."""
        connection = self._connection()
        if connection is None:
            return defer.fail(BusUnavailable(f"the bus ({self.address.safe}) is down"))
        try:
            return connection.execute_command(*args).addErrback(_translate)
        except Exception:
            return defer.fail().addErrback(_translate)

    def publish(self, channel: bytes, payload: bytes) -> defer.Deferred:
        """PUBLISH ``payload`` on ``channel``; fires with the number of subscribers that received it."""
        return self.execute("PUBLISH", channel, payload)

    def publish_many(self, messages: Iterable[tuple[bytes, bytes]]) -> defer.Deferred:
        """PUBLISH each ``(channel, payload)`` in one pipelined write: one round trip for the batch.

        The commands are written in one reactor turn, before any reply is
        read; Twisted's transport sends what is written in one turn in one
        ``send()``. Fires with the subscriber counts, in order.
        """
        messages = list(messages)
        connection = self._connection()
        if connection is None:
            return defer.fail(BusUnavailable(f"the bus ({self.address.safe}) is down"))
        if not messages:
            return defer.succeed([])
        try:
            replies = [connection.execute_command("PUBLISH", channel, payload) for channel, payload in messages]
        except Exception:
            return defer.fail().addErrback(_translate)
        gathered = defer.gatherResults(replies, consumeErrors=True)
        return gathered.addErrback(lambda failure: failure.value.subFailure).addErrback(_translate)

    def eval(self, script: str | bytes, keys: Iterable = (), args: Iterable = ()) -> defer.Deferred:
        """Run a Lua script by its SHA1 (EVALSHA), sending its text (EVAL, which caches it) only if Redis lacks it."""
        return defer.Deferred.fromCoroutine(self._eval(script, tuple(keys), tuple(args)))

    async def _eval(self, script, keys: tuple, args: tuple):
        body = script.encode("utf-8") if isinstance(script, str) else script
        try:
            return await self.execute("EVALSHA", hashlib.sha1(body).hexdigest(), len(keys), *keys, *args)
        except BusCommandError as e:
            if not str(e).startswith("NOSCRIPT"):
                raise
        return await self.execute("EVAL", body, len(keys), *keys, *args)

    def _connection(self):
        return self._commands.ready if self._commands is not None and self.running else None


def _translate(failure):
    """txredisapi's exceptions as the bus's, so nothing outside chatd.bus needs to know txredisapi."""
    if failure.check(txredisapi.ConnectionError):  # also its TimeoutError
        raise BusUnavailable(f"lost the bus: {failure.getErrorMessage()}")
    if failure.check(txredisapi.ResponseError):
        raise BusCommandError(failure.getErrorMessage())
    return failure
