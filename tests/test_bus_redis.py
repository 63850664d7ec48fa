"""Unit tests for chatd.bus.redis: RedisBus's rules over txredisapi's real protocols, on a fake reactor.

Each connection the bus opens is handed a StringTransport: the test reads
what the bus wrote and answers in RESP, as Redis would. The clock is a Clock,
so reconnection delays and the watchdog run without waiting.
"""

from __future__ import annotations

from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.testing import EventLoggingObserver, MemoryReactorClock, StringTransport
from twisted.logger import formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from chatd.bus.redis import BusCommandError, BusUnavailable, RedisBus

PASSWORD = "pässword-not-to-log"
URL = f"redis://:{PASSWORD}@127.0.0.1:6390/2"


def resp(*args) -> bytes:
    """A command as the bus writes it."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


def push(*items: bytes) -> bytes:
    """A multi-bulk reply of bulk strings (a subscription confirmation has an integer last: see confirm)."""
    return b"*%d\r\n" % len(items) + b"".join(bulk(item) for item in items)


def confirm(channel: bytes, count: int = 1) -> bytes:
    return b"*3\r\n" + bulk(b"subscribe") + bulk(channel) + b":%d\r\n" % count


class FakeConnection:
    """One connection attempt of the bus, accepted on a StringTransport."""

    def __init__(self, reactor: MemoryReactorClock, index: int) -> None:
        self.reactor = reactor
        self.protocol = reactor.tcpClients[index][2].buildProtocol(None)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)

    def sent(self) -> bytes:
        value = self.transport.value()
        self.transport.clear()
        return value

    def receive(self, data: bytes) -> None:
        self.protocol.dataReceived(data)
        self.reactor.advance(0)  # txredisapi's parser resumes after each bulk reply in a later turn

    def lose(self) -> None:
        self.protocol.connectionLost(Failure(ConnectionDone("gone")))


class BusTestCase(SynchronousTestCase):
    channels = (b"chatd:events",)
    url = URL

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.messages: list = []
        self.states: list = []
        self.logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.bus = RedisBus(self.reactor, self.url, lambda channel, payload: self.messages.append((channel, payload)),
                            self.states.append, self.channels)
        self.bus.startService()
        self.addCleanup(self.bus.stopService)

    def accept(self, index: int) -> FakeConnection:
        return FakeConnection(self.reactor, index)

    def handshake(self) -> tuple[FakeConnection, FakeConnection]:
        """Accept the two newest attempts and answer their handshakes; returns (command, subscriber).

        Which is which shows after AUTH: the command connection SELECTs the
        URL's database, the subscriber SUBSCRIBEs (reconnections come in
        either order: their delays have a random part).
        """
        first, second = self.accept(-2), self.accept(-1)
        for connection in (first, second):
            self.assertEqual(connection.sent(), resp("AUTH", PASSWORD))
            connection.receive(b"+OK\r\n")
        command, subscriber = (first, second) if b"SELECT" in first.transport.value() else (second, first)
        self.assertEqual(command.sent(), resp("SELECT", 2))
        command.receive(b"+OK\r\n")
        for channel in self.channels:
            self.assertEqual(subscriber.sent(), resp("SUBSCRIBE", channel))
            subscriber.receive(confirm(channel))
        return command, subscriber

    def assertPasswordNeverLogged(self) -> None:
        for event in self.logged:
            self.assertNotIn(PASSWORD, formatEvent(event))
            self.assertNotIn(PASSWORD, repr(event))


class HandshakeTests(BusTestCase):
    channels = (b"chatd:events", b"chatd:other")

    def test_up_only_after_every_subscription_is_confirmed(self):
        """AUTH and SELECT on the command connection, AUTH then one SUBSCRIBE per channel; up after the last confirmation."""
        self.assertEqual(len(self.reactor.tcpClients), 2)
        self.assertEqual(self.reactor.tcpClients[0][:2], ("127.0.0.1", 6390))
        command, subscriber = self.accept(0), self.accept(1)
        command.receive(b"+OK\r\n")
        command.receive(b"+OK\r\n")
        subscriber.receive(b"+OK\r\n")
        self.assertEqual(subscriber.sent(), resp("AUTH", PASSWORD) + resp("SUBSCRIBE", b"chatd:events"))
        self.assertFalse(self.bus.up)
        subscriber.receive(confirm(b"chatd:events"))
        self.assertEqual(subscriber.sent(), resp("SUBSCRIBE", b"chatd:other"))  # only once the first is confirmed
        self.assertEqual(self.states, [])
        subscriber.receive(confirm(b"chatd:other", 2))
        self.assertTrue(self.bus.up)
        self.assertEqual(self.states, [True])

    def test_commands_fail_fast_while_down(self):
        """Before the bus is up, publish, publish_many, execute and eval fail at once with BusUnavailable."""
        for call in (lambda: self.bus.publish(b"c", b"p"), lambda: self.bus.publish_many([(b"c", b"p")]),
                     lambda: self.bus.execute("GET", "k"), lambda: self.bus.eval("return 1")):
            self.failureResultOf(call(), BusUnavailable)

    def test_refused_password_is_retried_and_logged_once(self):
        """A refused AUTH drops the connection and retries (within 1 s), logging the refusal once, never the password."""
        for _ in range(3):
            for connection in (self.accept(-2), self.accept(-1)):
                connection.receive(b"-WRONGPASS invalid username-password pair or user is disabled.\r\n")
                self.assertTrue(connection.transport.disconnected)
                connection.lose()
            before = len(self.reactor.tcpClients)
            self.reactor.advance(1.0)
            self.assertEqual(len(self.reactor.tcpClients), before + 2)
        refusals = [e for e in self.logged if "WRONGPASS" in formatEvent(e)]
        self.assertEqual(len(refusals), 2)  # once for each connection
        self.assertEqual(self.states, [])
        self.assertPasswordNeverLogged()


class ChannelTests(SynchronousTestCase):
    def test_the_events_channel_names_the_db(self):
        """Redis's pub/sub ignores SELECT: two deployments on one Redis but different dbs get different channels."""
        buses = [RedisBus(MemoryReactorClock(), f"redis://127.0.0.1:6379/{db}", print, print) for db in (0, 3)]
        self.assertEqual([bus.channels for bus in buses], [(b"chatd:0:events",), (b"chatd:3:events",)])


class NothingToSayTests(BusTestCase):
    url = "redis://127.0.0.1:6390/0"  # no password, db 0: the command connection's handshake sends nothing

    def test_command_connection_ready_at_once_still_counts(self):
        """With no AUTH and no SELECT to send, the command connection is ready as it connects; the bus is up
        when it connects after the subscriber's confirmation (as after a Redis restart), not only before it."""
        subscriber = self.accept(-1)
        self.assertEqual(subscriber.sent(), resp("SUBSCRIBE", self.channels[0]))
        subscriber.receive(confirm(self.channels[0]))
        self.assertEqual((self.bus.up, self.states), (False, []))
        self.accept(-2)
        self.assertEqual((self.bus.up, self.states), (True, [True]))


class StateTests(BusTestCase):
    def test_messages_reach_on_message_as_bytes(self):
        """Each message on a subscribed channel calls on_message(channel, payload) with bytes, even numbers."""
        _, subscriber = self.handshake()
        subscriber.receive(push(b"message", b"chatd:events", b"\x00\xffraw") + push(b"message", b"chatd:events", b"42"))
        self.assertEqual(self.messages, [(b"chatd:events", b"\x00\xffraw"), (b"chatd:events", b"42")])

    def test_a_failing_listener_does_not_stop_the_messages(self):
        """An exception in on_message is logged; the next message is still delivered."""
        calls = []

        def listener(channel, payload):
            calls.append(payload)
            raise ValueError("bad payload")

        self.bus._on_message = listener  # the subscriber reads it at construction: rebuild it
        self.bus.stopService()
        self.bus = RedisBus(self.reactor, self.url, listener, self.states.append, self.channels)
        self.bus.startService()
        _, subscriber = self.handshake()
        subscriber.receive(push(b"message", b"chatd:events", b"one"))
        subscriber.receive(push(b"message", b"chatd:events", b"two"))
        self.reactor.advance(0)
        self.assertEqual(calls, [b"one", b"two"])
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 2)

    def test_a_read_of_many_messages_is_parsed_at_once_in_order(self):
        """Messages arriving in one read (or split anywhere) reach on_message in order in that same call: no pause, no later turn."""
        _, subscriber = self.handshake()
        paused = []
        subscriber.transport.pauseProducing = lambda: paused.append(True)
        payloads = [b"a" * n for n in (1, 300, 5)] + [b"\r\n$3\r\nodd", b""]
        data = b"".join(push(b"message", b"chatd:events", p) for p in payloads)
        subscriber.protocol.dataReceived(data)  # no clock advance
        self.assertEqual(self.messages, [(b"chatd:events", p) for p in payloads])
        self.assertEqual(paused, [])
        self.assertEqual(self.reactor.getDelayedCalls(), [call for call in self.reactor.getDelayedCalls()
                                                          if call.getTime() > self.reactor.seconds()])
        del self.messages[:]
        for cut in (1, 7, 20, len(data) - 3):  # split mid-header, mid-bulk, mid-line
            subscriber.protocol.dataReceived(data[:cut])
            subscriber.protocol.dataReceived(data[cut:])
            self.assertEqual(self.messages, [(b"chatd:events", p) for p in payloads])
            del self.messages[:]

    def test_replies_behind_a_bulk_reply_are_answered_at_once(self):
        """On the command connection, replies read together (bulk first) fire their Deferreds in that call, in order."""
        command, _ = self.handshake()
        got = [self.bus.execute("GET", "k"), self.bus.execute("GET", "j"), self.bus.publish(b"c", b"p")]
        command.transport.clear()
        command.protocol.dataReceived(bulk(b"one") + bulk(b"two") + b":1\r\n")  # no clock advance
        self.assertEqual([self.successResultOf(d) for d in got], [b"one", b"two", 1])

    def test_lost_subscriber_resubscribes_then_reports_up(self):
        """A lost subscriber: on_state(False); a new connection within 1 s subscribes again; on_state(True) after the confirmation."""
        command, subscriber = self.handshake()
        subscriber.lose()
        self.assertEqual(self.states, [True, False])
        self.assertFalse(self.bus.up)
        self.reactor.advance(1.0)
        again = self.accept(-1)
        self.assertEqual(again.sent(), resp("AUTH", PASSWORD))
        again.receive(b"+OK\r\n")
        self.assertEqual(again.sent(), resp("SUBSCRIBE", b"chatd:events"))
        self.assertEqual(self.states, [True, False])
        again.receive(confirm(b"chatd:events"))
        self.assertEqual(self.states, [True, False, True])

    def test_lost_command_connection_is_down_too(self):
        """Publishing needs the command connection: losing it is down, and its return is up again."""
        command, _ = self.handshake()
        command.lose()
        self.assertEqual(self.states, [True, False])
        self.failureResultOf(self.bus.publish(b"c", b"p"), BusUnavailable)
        self.reactor.advance(1.0)
        again = self.accept(-1)
        self.assertEqual(again.sent(), resp("AUTH", PASSWORD))
        again.receive(b"+OK\r\n")
        self.assertEqual(again.sent(), resp("SELECT", 2))
        again.receive(b"+OK\r\n")
        self.assertEqual(self.states, [True, False, True])

    def test_reconnect_delay_is_capped_near_one_second(self):
        """However many attempts fail, the next one starts within 1 s."""
        self.handshake()[1].lose()
        for _ in range(12):
            before = len(self.reactor.tcpClients)
            self.reactor.advance(1.0)
            self.assertEqual(len(self.reactor.tcpClients), before + 1)
            self.reactor.tcpClients[-1][2].clientConnectionFailed(None, Failure(ConnectionRefusedError()))
        refused = [e for e in self.logged if "refused" in formatEvent(e).lower()]
        self.assertEqual(len(refused), 1)  # logged once, not at every attempt

    def test_in_flight_command_fails_when_the_connection_is_lost(self):
        """A command waiting for its reply fails with BusUnavailable when its connection goes."""
        command, _ = self.handshake()
        pending = self.bus.execute("GET", "k")
        command.lose()
        self.failureResultOf(pending, BusUnavailable)

    def test_stop_reports_nothing(self):
        """Stopping the service closes both connections without calling on_state."""
        command, subscriber = self.handshake()
        stopped = self.bus.stopService()
        self.assertTrue(command.transport.disconnecting and subscriber.transport.disconnecting)
        command.lose()
        subscriber.lose()
        self.successResultOf(stopped)
        self.assertEqual(self.states, [True])
        self.assertFalse(self.bus.up)
        self.reactor.advance(5)
        self.assertEqual(len(self.reactor.tcpClients), 2)  # no reconnection


class WatchdogTests(BusTestCase):
    def test_quiet_connection_is_pinged(self):
        """A connection that has heard nothing for 2 s is sent a PING; an answer keeps it."""
        command, subscriber = self.handshake()
        self.reactor.advance(2.0)
        self.assertEqual(command.sent(), resp("PING"))
        self.assertEqual(subscriber.sent(), resp("PING"))
        command.receive(b"+PONG\r\n")
        subscriber.receive(push(b"pong", b""))
        self.reactor.advance(2.0)
        self.assertFalse(command.transport.disconnected or subscriber.transport.disconnected)
        self.assertTrue(self.bus.up)

    def test_silent_connection_is_dropped_within_four_seconds(self):
        """No answer to the PING: the connection is aborted within 4 s of the last byte, then the bus is down."""
        command, subscriber = self.handshake()
        subscriber.receive(push(b"message", b"chatd:events", b"x"))  # the subscriber stays busy
        for _ in range(7):
            self.reactor.advance(0.5)
            subscriber.receive(push(b"message", b"chatd:events", b"x"))
        self.assertTrue(command.transport.disconnected)
        self.assertFalse(subscriber.transport.disconnected)
        command.lose()
        self.assertEqual(self.states, [True, False])

    def test_handshake_that_never_ends_is_dropped(self):
        """A Redis that accepts but never answers (SIGSTOPped) is given up on, and tried again."""
        command = self.accept(-2)
        self.reactor.advance(4.0)
        self.assertTrue(command.transport.disconnected)
        command.lose()
        before = len(self.reactor.tcpClients)
        self.reactor.advance(1.0)
        self.assertEqual(len(self.reactor.tcpClients), before + 1)


class CommandTests(BusTestCase):
    def test_publish_many_is_one_write_before_any_reply(self):
        """publish_many writes every PUBLISH before reading a reply; it fires with the counts in order."""
        command, _ = self.handshake()
        done = self.bus.publish_many([(b"chatd:events", b"one"), (b"room:2", b"two"), (b"chatd:events", b"3")])
        self.assertEqual(command.sent(), resp("PUBLISH", b"chatd:events", b"one") + resp("PUBLISH", b"room:2", b"two")
                         + resp("PUBLISH", b"chatd:events", b"3"))
        self.assertNoResult(done)
        command.receive(b":2\r\n:0\r\n:1\r\n")
        self.assertEqual(self.successResultOf(done), [2, 0, 1])
        self.assertEqual(self.successResultOf(self.bus.publish_many([])), [])

    def test_publish_many_fails_whole_when_lost(self):
        """A batch whose connection is lost mid-way fails with BusUnavailable."""
        command, _ = self.handshake()
        done = self.bus.publish_many([(b"c", b"1"), (b"c", b"2")])
        command.receive(b":1\r\n")
        command.lose()
        self.failureResultOf(done, BusUnavailable)

    def test_execute_returns_replies_undecoded(self):
        """execute: bulk replies are bytes, integers int, status replies str; Redis's error is a BusCommandError."""
        command, _ = self.handshake()
        got = self.bus.execute("GET", "k"), self.bus.execute("HINCRBY", "h", "f", 1), self.bus.execute("SET", "k", "v")
        wrong = self.bus.execute("LPUSH", "k", "v")
        self.assertEqual(command.sent(), resp("GET", "k") + resp("HINCRBY", "h", "f", 1) + resp("SET", "k", "v")
                         + resp("LPUSH", "k", "v"))
        command.receive(bulk(b"12") + b":3\r\n+OK\r\n-WRONGTYPE Operation against a key\r\n")
        self.reactor.advance(0)
        self.assertEqual([self.successResultOf(d) for d in got], [b"12", 3, "OK"])
        self.assertIn("WRONGTYPE", str(self.failureResultOf(wrong, BusCommandError).value))

    def test_eval_sends_the_script_only_when_redis_lacks_it(self):
        """eval tries EVALSHA; on NOSCRIPT it sends EVAL with the text; another error is not retried."""
        import hashlib

        command, _ = self.handshake()
        script = "return redis.call('GET', KEYS[1])"
        sha = hashlib.sha1(script.encode()).hexdigest()
        done = self.bus.eval(script, ["k"], [1])
        self.assertEqual(command.sent(), resp("EVALSHA", sha, 1, "k", 1))
        command.receive(b"-NOSCRIPT No matching script. Please use EVAL.\r\n")
        self.assertEqual(command.sent(), resp("EVAL", script, 1, "k", 1))
        command.receive(bulk(b"v"))
        self.reactor.advance(0)
        self.assertEqual(self.successResultOf(done), b"v")
        failing = self.bus.eval(script, ["k"])
        command.sent()
        command.receive(b"-ERR Error running script\r\n")
        self.failureResultOf(failing, BusCommandError)
        self.assertEqual(command.sent(), b"")
