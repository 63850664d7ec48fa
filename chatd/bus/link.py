"""One connection to Redis kept open: connect, handshake, and after a loss or a failure, again.

Not txredisapi's factories or Twisted's ``ClientService``: both reset their
backoff as soon as TCP connects, so a Redis that accepts and then refuses
(wrong password, still loading) would be hammered in a tight loop. Here an
attempt succeeds only when its handshake does (:mod:`chatd.bus.protocol`), the
delay doubles from ``first_delay`` up to ``max_delay`` (about 1 s: the bus is
back within a second of Redis), and a refusal is logged once, not at every retry.
"""

from __future__ import annotations

import random

from twisted.internet import defer
from twisted.internet.protocol import Factory
from twisted.logger import Logger


class Link:
    """Keeps one connection built by ``build(owner)`` open until :meth:`stop`.

    ``on_ready(protocol)`` is called after each successful handshake,
    ``on_lost(reason)`` when a ready connection is lost.
    """

    _log = Logger()

    def __init__(self, reactor, endpoint, build, name: str, safe_url: str, on_ready, on_lost,
                 first_delay: float = 0.1, max_delay: float = 1.0, jitter=random.random) -> None:
        self._reactor = reactor
        self._endpoint = endpoint
        self._build = build
        self._name = name
        self._safe_url = safe_url
        self._on_ready = on_ready
        self._on_lost = on_lost
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._jitter = jitter
        self._failures = 0
        self._running = False
        self._attempt: defer.Deferred | None = None
        self._retry = None
        self._last_complaint: str | None = None
        self._refused = None  # the connection whose handshake Redis refused, if any
        self._closed: defer.Deferred | None = None
        self.protocol = None  # the current connection, ready or still in its handshake

    @property
    def ready(self):
        """The connection, if it has finished its handshake, else None."""
        return self.protocol if self.protocol is not None and self.protocol.ready else None

    def start(self) -> None:
        self._running = True
        self._connect()

    def stop(self) -> defer.Deferred:
        """Stop reconnecting and close the connection; fires once it is closed."""
        self._running = False
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        if self._attempt is not None:
            self._attempt.cancel()
        if self.protocol is None:
            return defer.succeed(None)
        self._closed = defer.Deferred()
        self.protocol.transport.loseConnection()
        return self._closed

    # -- connecting ---------------------------------------------------------
    def _connect(self) -> None:
        self._retry = None
        factory = Factory.forProtocol(lambda: self._build(self))
        factory.noisy = False  # no "Starting factory" line at every reconnection
        self._attempt = self._endpoint.connect(factory)
        self._attempt.addCallbacks(self._connected, self._not_connected)

    def _connected(self, protocol) -> None:
        self._attempt = None
        self.protocol = protocol  # its handshake is under way: handshake_done or connection_lost follows

    def _not_connected(self, failure) -> None:
        self._attempt = None
        if failure.check(defer.CancelledError) and not self._running:
            return
        self._complain(f"cannot connect: {failure.getErrorMessage()}")
        self._again()

    def _again(self) -> None:
        if not self._running:
            return
        delay = min(self._max_delay, self._first_delay * 2 ** self._failures)
        delay *= 0.8 + 0.2 * self._jitter()  # spread many nodes' reconnections, never above max_delay
        self._failures += 1
        self._retry = self._reactor.callLater(delay, self._connect)

    def _complain(self, message: str) -> None:
        if message != self._last_complaint:  # once per kind of trouble, not once a second
            # Not "message" as the key: the legacy log bridge owns that one (and "why").
            self._log.warn("bus {name} connection to {redis}: {problem}; retrying",
                           name=self._name, redis=self._safe_url, problem=message)
            self._last_complaint = message

    # -- told by the protocol (chatd.bus.protocol) --------------------------
    def handshake_done(self, protocol) -> None:
        if protocol is not self.protocol:
            return
        self._failures = 0
        if self._last_complaint is not None:
            self._log.info("bus {name} connection to {redis} is back", name=self._name, redis=self._safe_url)
            self._last_complaint = None
        self._on_ready(protocol)

    def handshake_failed(self, protocol, message: str) -> None:
        self._complain(f"refused: {message}")
        self._refused = protocol  # its close that follows is no news

    def connection_lost(self, protocol, reason, was_ready: bool) -> None:
        if protocol is not self.protocol:
            return
        self.protocol = None
        if self._closed is not None:
            closed, self._closed = self._closed, None
            closed.callback(None)
        if was_ready:
            self._on_lost(reason)
        elif self._running and protocol is not self._refused:
            self._complain(f"closed before it was ready: {reason.getErrorMessage()}")
        self._again()
