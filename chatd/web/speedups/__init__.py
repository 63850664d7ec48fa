"""The measured speed-ups that read Twisted's, Autobahn's and PyJWT's internals, in quarantine.

Each module says which private attribute or method it relies on, and why that
is worth it (the figures are in docs/PERFORMANCE.md); tests/test_speedups_contract.py
checks every one of them against the installed libraries, whose major versions
setup.py pins:

- ``fastframes``: complete masked text frames read without Autobahn's frame machinery;
- ``fastwrite``: bytes for an idle plain-TCP socket sent before Twisted's write buffer;
- ``handshake``: the plain opening handshake read without Autobahn's general parser;
- ``router``: connections opened for ``/ws`` routed by their first bytes, past Twisted's HTTP layer;
- ``autobahn_tuning``: Autobahn's debug formatting made lazy, its options kept on a class;
- ``jwt_hs256``: PyJWT's HS256 check without its per-call key checks.

Nothing here happens on import. :class:`Speedups` is a named service
(``speedups``): built with ``enabled=False`` (``CHATD_SPEEDUPS=0``) it installs
nothing, and chatd runs on the plain libraries: the site alone on the port
(``/ws`` mounted as a ``WebSocketResource``), :class:`chatd.web.ws.ChatProtocol`
as Autobahn made it, and PyJWT's own ``PyJWS``. What is security or
correctness (the handshake bound, refusals in chatd's words, the bounded
outbox, ping counting) lives outside this package and applies either way.
"""

from __future__ import annotations

from twisted.application.service import Service
from twisted.logger import Logger

from chatd.web.speedups import autobahn_tuning, jwt_hs256
from chatd.web.speedups.fastframes import FastFrames
from chatd.web.speedups.fastwrite import DirectWrites
from chatd.web.speedups.handshake import FastHandshake
from chatd.web.speedups.router import UpgradeRouter
from chatd.web.ws import ChatProtocol


class FastChatProtocol(FastFrames, DirectWrites, FastHandshake, ChatProtocol):
    """:class:`ChatProtocol` with the protocol speed-ups (frames, writes, handshake) mixed in."""


class Speedups(Service):
    """Installs the speed-ups when it starts and removes them when it stops (or, disabled, does neither).

    It must start before the listener: ``front`` is the factory to listen with,
    the first-bytes router when enabled and the site itself when not.
    """

    name = "speedups"
    _log = Logger()

    def __init__(self, enabled: bool, reactor, site, websocket, tokens) -> None:
        self.enabled = enabled
        self.front = UpgradeRouter(reactor, site, websocket) if enabled else site
        self._websocket = websocket
        self._tokens = tokens
        self.installed = False

    def startService(self) -> None:
        super().startService()
        if not self.enabled:
            self._log.info("speed-ups off (CHATD_SPEEDUPS=0): plain Twisted, Autobahn and PyJWT paths")
            return
        autobahn_tuning.install()
        self._websocket.protocol = autobahn_tuning.protocol_with_options(self._websocket, FastChatProtocol)
        self._tokens.use_verifier(jwt_hs256.verifier())
        self.installed = True

    def stopService(self):
        super().stopService()
        if self.installed:
            # Open sockets keep their class; one accepted while the listener closes is plain,
            # which is correct too.
            self._websocket.protocol = ChatProtocol
            self._tokens.use_verifier(None)
            autobahn_tuning.uninstall()
            self.installed = False
