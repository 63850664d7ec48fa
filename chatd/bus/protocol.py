"""The two kinds of connection to Redis: txredisapi's protocols with a handshake and a watchdog.

txredisapi parses the wire and matches replies to commands; chatd adds what
a bus needs from each connection and txredisapi's own connection handling
does not give it:

- a handshake run on every new connection (AUTH, SELECT, and for the
  subscriber one SUBSCRIBE per channel), after which, and only after which,
  the connection counts as ready. txredisapi reconnects but does not
  resubscribe, and stops reconnecting for good after a failed AUTH;
- a watchdog: a connection that has received nothing for ``interval``
  seconds is sent a PING, and one still silent ``timeout`` seconds later is
  aborted. A SIGSTOPped or partitioned Redis sends no RST, so without this a
  dead connection looks alive for as long as TCP keeps trying (minutes);
- parsing without a pause: after each bulk string that has bytes behind it,
  txredisapi pauses the transport (two epoll changes) and parses the rest in a
  later reactor turn (``callLater(0)``). A published event is three bulk strings,
  so that was two pauses and two turns per event on every subscriber. Here the
  rest is parsed at once, in a loop (no recursion), in the order it came.

Replies are not decoded (``charset=None``, no number conversion): bulk
strings are ``bytes``, integers ``int``, status replies ``str``.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

import txredisapi


class _Watched:
    """The handshake and the watchdog shared by both connection kinds (a mixin over a txredisapi protocol).

    ``owner`` is told ``handshake_done(protocol)``, ``handshake_failed(protocol,
    message)`` and ``connection_lost(protocol, reason, was_ready)``.
    """

    _log = Logger()

    def _watch_init(self, clock, owner, address, interval: float, timeout: float) -> None:
        super().__init__(charset=None, convertNumbers=False)  # the txredisapi protocol after this mixin
        self.callLater = clock.callLater  # txredisapi's own timers (reply timeouts), if it ever sets one
        self._rest: bytes | None = None  # bytes after a bulk string, parsed before dataReceived returns
        self._clock = clock
        self._owner = owner
        self._address = address
        self._interval = interval
        self._timeout = timeout
        self._last_in = clock.seconds()
        self._pinging = False
        self._watchdog: LoopingCall | None = None
        self.ready = False

    # -- txredisapi's hooks -------------------------------------------------
    def connectionMade(self) -> None:
        # Not txredisapi's connectionMade: it would AUTH and SELECT, then call into its own factory.
        self.connected = 1
        self._last_in = self._clock.seconds()
        self._watchdog = LoopingCall(self._check)
        self._watchdog.clock = self._clock
        self._watchdog.start(min(self._interval, self._timeout) / 3, now=False)
        Deferred.fromCoroutine(self._handshake()).addCallbacks(self._handshake_done, self._handshake_failed)

    def dataReceived(self, data, unpause=False):
        self._last_in = self._clock.seconds()
        why = super().dataReceived(data, unpause)
        while self._rest is not None and not why:  # what followed a bulk string, in order
            rest, self._rest = self._rest, None
            why = super().dataReceived(rest)
        self._rest = None
        return why

    def setLineMode(self, extra=b""):
        # txredisapi's parser calls this after each bulk string, with the bytes received behind it.
        # Its own version pauses the transport and parses them in a later turn; we parse them as soon
        # as the current parse returns (``dataReceived`` above), before anything else can arrive.
        self.line_mode = 1
        if extra:
            self._rest = extra if self._rest is None else extra + self._rest

    def connectionLost(self, reason) -> None:
        was_ready, self.ready = self.ready, False
        if self._watchdog is not None and self._watchdog.running:
            self._watchdog.stop()
        super().connectionLost(reason)  # fails the commands still waiting with txredisapi's ConnectionError
        self._owner.connection_lost(self, reason, was_ready)

    # -- the handshake ------------------------------------------------------
    async def _handshake(self) -> None:
        if self._address.password is not None:
            await self._checked("AUTH", *filter(None, [self._address.username]), self._address.password)
        await self._after_auth()

    async def _after_auth(self) -> None:
        """What this kind of connection does once authenticated (subclasses)."""

    async def _checked(self, *command):
        """Run a handshake command; an error reply raises (txredisapi's ``ResponseError``)."""
        return await self.execute_command(*command)

    def _handshake_done(self, _) -> None:
        if not self.connected:
            return
        self.ready = True
        self._owner.handshake_done(self)

    def _handshake_failed(self, failure) -> None:
        if not self.connected:
            return  # lost while in the handshake: connection_lost says so
        # Redis's reply ("WRONGPASS invalid username-password pair", "NOAUTH ...") holds no secret.
        self._owner.handshake_failed(self, failure.getErrorMessage())
        self.transport.abortConnection()

    # -- the watchdog -------------------------------------------------------
    def _check(self) -> None:
        silence = self._clock.seconds() - self._last_in
        if silence >= self._interval + self._timeout:
            self._log.warn("no answer from {redis} for {silence:.1f}s: dropping the connection",
                           redis=self._address.safe, silence=silence)
            self._watchdog.stop()
            self.transport.abortConnection()
        elif self.ready and silence >= self._interval and not self._pinging:
            self._pinging = True
            self.execute_command("PING").addBoth(self._pinged)

    def _pinged(self, _) -> None:
        self._pinging = False  # a failure here is the lost connection, reported by connectionLost


class CommandConnection(_Watched, txredisapi.RedisProtocol):
    """The connection for commands and PUBLISH: AUTH, then SELECT the URL's database."""

    def __init__(self, clock, owner, address, interval: float, timeout: float) -> None:
        self._watch_init(clock, owner, address, interval, timeout)

    async def _after_auth(self) -> None:
        if self._address.db:
            await self._checked("SELECT", self._address.db)


class SubscriberConnection(_Watched, txredisapi.SubscriberProtocol):
    """The subscriber: AUTH, then SUBSCRIBE to each channel, one command each, confirmed before it is ready.

    One SUBSCRIBE per channel so that each confirmation answers its own
    command: txredisapi drops confirmations nobody waits for and would hand a
    second one to the next command (a watchdog PING).
    """

    def __init__(self, clock, owner, address, interval: float, timeout: float, channels, on_message) -> None:
        self._watch_init(clock, owner, address, interval, timeout)
        self._channels = tuple(channels)
        self._on_message = on_message

    async def _after_auth(self) -> None:
        for channel in self._channels:
            await self._checked("SUBSCRIBE", channel)

    def messageReceived(self, pattern, channel, message) -> None:
        try:
            self._on_message(channel, message)
        except Exception:
            self._log.failure("the bus's on_message failed on a message from {channel!r}", channel=channel)
