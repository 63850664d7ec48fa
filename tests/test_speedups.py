"""The switch of the speed-ups and the collector tuning (issue 10; docs/BEHAVIOUR.md, Operations).

``CHATD_SPEEDUPS=0`` serves the site alone on the port, frames through Autobahn, tokens through PyJWT's own
``PyJWS``; ``CHATD_GC_TUNING=0`` leaves the garbage collector as CPython set it. On, each is installed by its
named service when chatd starts, and removed when it stops; importing chatd installs nothing.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from dataclasses import replace
from pprint import pformat

import autobahn.websocket.protocol as websocket_protocol
import jwt
from jwt.algorithms import HMACAlgorithm
from jwt.api_jws import PyJWS
from twisted.internet.defer import maybeDeferred
from twisted.internet.testing import MemoryReactorClock
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase, TestCase

from chatd.accounts.tokens import InvalidToken, TokenIssuer
from chatd.config import Config
from chatd.service import ChatdService
from chatd.tap import Options, switches
from chatd.web.site import CountingSite
from chatd.web.speedups import FastChatProtocol, Speedups, autobahn_tuning, fastframes, jwt_hs256
from chatd.web.speedups.router import UpgradeRouter
from chatd.web.ws import ChatFactory, ChatProtocol
from tests.harness import ROOT, SECRET, start_server
from tests.test_ws_edge import EdgeTestCase, client_frame, server_frames
from tests.wsclient import connect


def options(**environ):
    """The Config ``twistd chatd`` builds in this environment."""
    parsed = Options(environ=environ)
    parsed.parseOptions([])
    return parsed.config


def graph(**overrides) -> ChatdService:
    """A chatd built (not started) on a fake reactor, with an external store that is never reached."""
    config = Config(listen=["tcp:0:interface=127.0.0.1"], mongo="mongodb://127.0.0.1:1/never", jwt_secret=SECRET,
                    data_dir="unused-data-dir", static=str(ROOT / "www"))
    return ChatdService(replace(config, **overrides), MemoryReactorClock())


def plain_factory() -> ChatFactory:
    """A ChatFactory as chatd.service builds it (the chat behind it is not reached)."""
    return ChatFactory(chat=None, accounts=None, origins=None, admission=None, metrics=None)


class SwitchOptionsTests(SynchronousTestCase):
    """The switches are read from the environment only, on unless ``0``."""

    def test_on_by_default(self):
        """With nothing set both are on."""
        config = options()
        self.assertEqual((config.speedups, config.gc_tuning), (True, True))

    def test_each_turned_off_alone(self):
        """CHATD_SPEEDUPS=0 turns the speed-ups off and leaves the collector tuning on; CHATD_GC_TUNING=0 the other way."""
        config = options(CHATD_SPEEDUPS="0")
        self.assertEqual((config.speedups, config.gc_tuning), (False, True))
        config = options(CHATD_GC_TUNING="0", CHATD_SPEEDUPS="1")
        self.assertEqual((config.speedups, config.gc_tuning), (True, False))

    def test_nonsense_is_refused(self):
        """Anything but 0 or 1 stops chatd from starting, naming the variable (not silently on)."""
        for value in ("off", "false", "no", "2"):
            with self.subTest(value=value):
                error = self.assertRaises(UsageError, options, CHATD_SPEEDUPS=value)
                self.assertIn("CHATD_SPEEDUPS", str(error))
        self.assertEqual(switches({"CHATD_GC_TUNING": " 0 "}), {"speedups": True, "gc_tuning": False})


class WiringTests(SynchronousTestCase):
    """The graph: a ``speedups`` service before the listener, which listens with what it says; a ``gc`` service."""

    def test_off_the_site_alone_listens(self):
        """With the speed-ups off the listener's factory is the site itself (``/ws`` mounted in it)."""
        service = graph(speedups=False)
        speedups = service.getServiceNamed("speedups")
        self.assertIsInstance(speedups.front, CountingSite)
        self.assertIn(b"ws", speedups.front.resource.children)
        self.assertIs(self._listening_with(service), speedups.front)

    def test_on_the_router_listens(self):
        """With the speed-ups on the listener's factory is the first-bytes router in front of the same site."""
        service = graph(speedups=True)
        router = self._listening_with(service)
        self.assertIsInstance(router, UpgradeRouter)
        self.assertIsInstance(router.site, CountingSite)

    def test_order_and_names(self):
        """``speedups`` starts before the listener and ``gc`` last; each is built with its switch."""
        service = graph(speedups=False, gc_tuning=False)
        children = list(service)
        self.assertLess(children.index(service.getServiceNamed("speedups")), children.index(service.listener))
        self.assertIs(children[-1], service.getServiceNamed("gc"))
        self.assertFalse(service.getServiceNamed("speedups").enabled)
        self.assertFalse(service.getServiceNamed("gc").enabled)

    def _listening_with(self, service):
        """Start only the listener, on the fake reactor, and answer the factory it listened with."""
        reactor = service.listener._reactor
        service.listener.startService()
        self.addCleanup(lambda: self.successResultOf(maybeDeferred(service.listener.stopService)))
        [(_, factory, _, _)] = reactor.tcpServers
        return factory


class SpeedupsServiceTests(SynchronousTestCase):
    """What the ``speedups`` service installs when it starts, and takes back when it stops."""

    def setUp(self):
        self.factory = plain_factory()
        self.tokens = TokenIssuer(MemoryReactorClock(), 3600, SECRET)

    def assert_plain(self):
        """Autobahn's own formatters, the plain protocol, PyJWT's own PyJWS."""
        self.assertIs(websocket_protocol.pformat, pformat)
        self.assertIs(self.factory.protocol, ChatProtocol)
        self.assertIs(type(self.tokens.verifier), PyJWS)

    def test_disabled_installs_nothing(self):
        """Started with the switch off, nothing is replaced, and tokens still verify."""
        service = Speedups(False, MemoryReactorClock(), None, self.factory, self.tokens)
        service.startService()
        self.assert_plain()
        self.assertEqual(self.tokens.verify(self.tokens.issue("u1", "alice", "user").token).sub, "u1")
        service.stopService()
        self.assert_plain()

    def test_enabled_installs_at_start_and_removes_at_stop(self):
        """Nothing before start; at start the formatters, the protocol and the verifier; all back at stop."""
        service = Speedups(True, MemoryReactorClock(), None, self.factory, self.tokens)
        self.assert_plain()
        service.startService()
        self.assertIsNot(websocket_protocol.pformat, pformat)
        self.assertTrue(issubclass(self.factory.protocol, FastChatProtocol))
        self.assertEqual(self.factory.protocol.CONFIG_ATTRS, ())
        self.assertIsInstance(self.tokens.verifier, jwt_hs256._JWS)
        self.assertEqual(self.tokens.verify(self.tokens.issue("u1", "alice", "user").token).sub, "u1")
        service.stopService()
        self.assert_plain()

    def test_formatters_stay_until_the_last_service_stops(self):
        """Two chatd services in one process: Autobahn gets its formatters back only when both have stopped."""
        first = Speedups(True, MemoryReactorClock(), None, self.factory, self.tokens)
        second = Speedups(True, MemoryReactorClock(), None, plain_factory(), TokenIssuer(MemoryReactorClock(), 3600, SECRET))
        first.startService()
        second.startService()
        first.stopService()
        self.assertTrue(autobahn_tuning.installed())
        second.stopService()
        self.assertFalse(autobahn_tuning.installed())
        self.assert_plain()


def ping_path(test: EdgeTestCase) -> list:
    """Send one ping frame on an open socket, check the pong; the calls the fast frame reader saw."""
    calls = []
    original = fastframes.split_text_frames
    test.patch(fastframes, "split_text_frames", lambda *args: calls.append(args) or original(*args))
    protocol, transport = test.open()
    protocol.dataReceived(client_frame(1, b'{"type":"ping"}'))
    [(opcode, payload)] = server_frames(transport.value())
    test.assertEqual((opcode, json.loads(payload)), (1, {"type": "pong"}))
    return calls


class PlainFramePathTests(EdgeTestCase):
    """A client's text frame on the plain protocol (StringTransport)."""

    def test_frames_take_autobahns_path(self):
        """Off, the frame is read by Autobahn and answered; the fast reader is never called."""
        self.assertEqual(ping_path(self), [])


class FastFramePathTests(EdgeTestCase):
    """A client's text frame with the speed-ups installed (StringTransport)."""

    speedups = True

    def test_frames_take_the_fast_path(self):
        """On, the same frame is read by the fast reader, with the same answer."""
        self.assertEqual(len(ping_path(self)), 1)


class TokenPathTests(SynchronousTestCase):
    """Tokens verify through plain PyJWT unless the speed-ups are installed."""

    def test_plain_pyjwt_checks_the_key_every_time_the_fast_one_once(self):
        """PyJWT's PyJWS prepares the key for each verification; the speed-up's verifier for the first only."""
        issuer = TokenIssuer(MemoryReactorClock(), 3600, SECRET)
        token = issuer.issue("u1", "alice", "user").token
        prepared = []
        original = HMACAlgorithm.prepare_key
        self.patch(HMACAlgorithm, "prepare_key", lambda self, key: prepared.append(key) or original(self, key))
        for _ in range(3):
            issuer.verify(token)
        self.assertEqual(len(prepared), 3)
        issuer.use_verifier(jwt_hs256.verifier())
        del prepared[:]
        for _ in range(3):
            issuer.verify(token)
        self.assertEqual(len(prepared), 1)
        self.assertRaises(InvalidToken, issuer.verify, jwt.encode({"sub": "u1"}, b"o" * 64, algorithm="HS256"))


class CollectorTuningTests(SynchronousTestCase):
    """The ``gc`` start-up step."""

    def setUp(self):
        self.thresholds = gc.get_threshold()
        self.frozen = gc.get_freeze_count()

    def test_off_leaves_the_collector_alone(self):
        """With CHATD_GC_TUNING=0 starting chatd freezes nothing and keeps CPython's thresholds."""
        step = graph(gc_tuning=False).getServiceNamed("gc")
        step.startService()
        self.assertEqual((gc.get_threshold(), gc.get_freeze_count()), (self.thresholds, self.frozen))
        step.stopService()

    def test_on_freezes_at_start_and_thaws_at_stop(self):
        """On, start-up objects are frozen and young collections rarer; stopping puts both back."""
        step = graph().getServiceNamed("gc")
        step.startService()
        self.addCleanup(gc.set_threshold, *self.thresholds)
        self.assertEqual(gc.get_threshold(), (50_000, 50, 100))
        self.assertGreater(gc.get_freeze_count(), 0)
        step.stopService()
        self.assertEqual((gc.get_threshold(), gc.get_freeze_count()), (self.thresholds, 0))


# Every module whose internals a speed-up reads, and the modules that define what it replaces.
_SNAPSHOT = """
import importlib, json
MODULES = ["autobahn.websocket.protocol", "autobahn.twisted.websocket", "autobahn.twisted.resource", "autobahn.util",
           "twisted.internet.tcp", "twisted.internet.abstract", "twisted.protocols.tls", "twisted.protocols.policies",
           "twisted.web.http", "jwt", "jwt.api_jws", "jwt.api_jwt", "jwt.algorithms"]
def snapshot():
    state = {}
    for name in MODULES:
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            state[name + "." + attr] = id(value)
            if isinstance(value, type) and value.__module__ == name:
                for member, inner in vars(value).items():
                    state[name + "." + attr + "." + member] = id(inner)
    return state
# zope.interface caches what a class implements on the class when it is first subclassed: not a patch.
IGNORED = {"__implemented__", "__provides__", "__providedBy__"}
before = snapshot()
import chatd.web.ws, chatd.web.speedups, chatd.accounts.tokens, chatd.service, chatd.tap
after = snapshot()
changed = [key for key in before.keys() | after.keys() if before.get(key) != after.get(key)]
print(json.dumps(sorted(key for key in changed if key.rsplit(".", 1)[1] not in IGNORED)))
"""


class NoImportSideEffectTests(SynchronousTestCase):
    """Importing chatd changes nothing in the libraries whose internals the speed-ups read."""

    def test_importing_chatd_patches_nothing(self):
        """In a fresh interpreter, no attribute of Autobahn's, Twisted's or PyJWT's modules or classes changes on import."""
        result = subprocess.run([sys.executable, "-c", _SNAPSHOT], cwd=ROOT, capture_output=True, text=True,
                                timeout=60, check=True)
        self.assertEqual(json.loads(result.stdout), [])


class EndToEndSwitchTests(TestCase):
    """The switch on a running chatd with real sockets and the real store."""

    timeout = 60

    async def _socket_class(self, server) -> type:
        """Open a socket as alice, wait for hello, and answer the class of the protocol serving it."""
        alice = await server.client().register("alice")
        ws = await connect(server.url, alice["token"], test=self)
        await ws.next("hello")
        [sock] = server.service.registry.connections()
        return type(sock.conn)

    async def test_off_serves_sockets_through_the_site_with_the_plain_protocol(self):
        """CHATD_SPEEDUPS=0: the port is the site's, the socket is the plain ChatProtocol, and the collector is untouched."""
        thresholds = gc.get_threshold()
        server = await start_server(self, speedups=False, gc_tuning=False)
        self.assertIsInstance(server.service.listener.ports[0].factory, CountingSite)
        self.assertIs(await self._socket_class(server), ChatProtocol)
        self.assertEqual(gc.get_threshold(), thresholds)

    async def test_on_routes_sockets_past_the_site_to_the_fast_protocol(self):
        """With the speed-ups on: the first-bytes router on the port, and the fast protocol on the socket."""
        server = await start_server(self, speedups=True)
        self.assertIsInstance(server.service.listener.ports[0].factory, UpgradeRouter)
        self.assertTrue(issubclass(await self._socket_class(server), FastChatProtocol))

