"""The listening sockets of ``--workers``: bound once by the parent, adopted by every worker.

Both sides read a ``--listen`` description with Twisted's own parser
(``endpoints.serverFromString``), so ``tcp:``, ``tcp6:`` and ``ssl:`` mean
exactly what they mean for a single chatd (interface, backlog, key and
certificate files). The endpoint calls ``listenTCP`` or ``listenSSL`` on the
reactor it was given, a public interface: the parent hands it a :class:`_Binder`
that binds and listens on a plain socket and never accepts, and a worker hands
it an :class:`AdoptingReactor` that gives the inherited socket to the real
reactor with ``adoptStreamPort``. For ``ssl:``, the parent binds the TCP socket
and each worker wraps what it accepts in TLS with the endpoint's context, as
Twisted's own ``listenSSL`` does (``TLSMemoryBIOFactory``).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from twisted.internet import abstract, endpoints
from twisted.internet.error import CannotListenError
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure

from chatd.web.site import with_backlog

# What a worker can adopt: TCP over IPv4 or IPv6, plain or TLS.
SHAREABLE_KINDS = ("tcp", "tcp6", "ssl")


def kind_of(description: str) -> str:
    """The endpoint type of a ``--listen`` description (``tcp``, ``ssl``, ``unix``...)."""
    return description.split(":", 1)[0].strip().lower()


@dataclass
class BoundSocket:
    """A listening socket the parent bound for ``description``; ``tls`` when workers wrap it in TLS."""

    description: str
    socket: socket.socket
    tls: bool

    @property
    def port(self) -> int:
        """The bound port (the real one for a ``:0`` description)."""
        return self.socket.getsockname()[1]

    @property
    def host(self) -> str:
        return self.socket.getsockname()[0]

    def close(self) -> None:
        self.socket.close()


def listening_socket(interface: str, port: int, backlog: int) -> socket.socket:
    """A non-blocking socket listening on ``interface:port``, as Twisted's ``listenTCP`` would bind it.

    Raises ``CannotListenError`` when the address is taken or invalid.
    """
    family = socket.AF_INET6 if abstract.isIPv6Address(interface) else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Twisted does on POSIX
        if family == socket.AF_INET6:
            # Resolves a scope id (fe80::1%eth0) the way Twisted does.
            address = socket.getaddrinfo(interface, port, family, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)[0][4]
        else:
            address = (interface, port)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as e:
        sock.close()
        raise CannotListenError(interface, port, e) from None
    # The flag is on the socket itself, shared with every worker: adoptStreamPort requires it.
    sock.setblocking(False)
    return sock


class _Binder:
    """What a server endpoint sees as its reactor in the parent: ``listen*`` binds a socket, nothing accepts."""

    def __init__(self, description: str) -> None:
        self._description = description

    def listenTCP(self, port, factory, backlog=50, interface=""):
        return BoundSocket(self._description, listening_socket(interface, port, backlog), tls=False)

    def listenSSL(self, port, factory, contextFactory, backlog=50, interface=""):
        # The endpoint parser has already read the key and certificate: a bad file fails here, in the parent.
        return BoundSocket(self._description, listening_socket(interface, port, backlog), tls=True)


def _now(deferred):
    """The result of a Deferred that has already fired (an endpoint's ``listen`` on a synchronous reactor)."""
    results: list = []
    deferred.addBoth(results.append)
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


def bind(description: str) -> BoundSocket:
    """Bind the socket of one ``--listen`` description (with chatd's listen backlog), for the workers.

    Raises ``ValueError`` for a kind a worker cannot adopt (``unix:``...) or a
    malformed description, ``CannotListenError`` when the address is taken.
    """
    if kind_of(description) not in SHAREABLE_KINDS:
        raise ValueError(f"--workers shares tcp:, tcp6: and ssl: listeners only, not {description!r}")
    endpoint = endpoints.serverFromString(_Binder(description), with_backlog(description))
    return _now(endpoint.listen(None))


@dataclass(frozen=True)
class Inherited:
    """A listening socket a worker received from its parent: its file descriptor here, and how to serve it."""

    fd: int
    tls: bool
    port: int


class AdoptingReactor:
    """What a server endpoint sees as its reactor in a worker: ``listen*`` adopts the next inherited socket.

    Endpoints ask in ``--listen`` order, the order the parent bound and passed
    the sockets in; each request is checked against the socket it gets (TLS or
    not, and the port unless it asked for 0).
    """

    def __init__(self, reactor, inherited: list[Inherited]) -> None:
        self._reactor = reactor
        self._waiting = list(inherited)

    def listenTCP(self, port, factory, backlog=50, interface=""):
        return self._adopt(port, factory, tls=False)

    def listenSSL(self, port, factory, contextFactory, backlog=50, interface=""):
        # What Twisted's own listenSSL does around listenTCP (posixbase.PosixReactorBase.listenSSL).
        return self._adopt(port, TLSMemoryBIOFactory(contextFactory, False, factory), tls=True)

    def _adopt(self, port: int, factory, tls: bool):
        if not self._waiting:
            raise CannotListenError(None, port, "no listening socket was inherited for this --listen")
        inherited = self._waiting.pop(0)
        if inherited.tls != tls or port not in (0, inherited.port):
            raise CannotListenError(None, port, f"the inherited socket (port {inherited.port}, tls {inherited.tls}) "
                                                f"does not match this --listen")
        sock = socket.socket(fileno=inherited.fd)  # learns the address family from the descriptor
        try:
            return self._reactor.adoptStreamPort(sock.fileno(), sock.family, factory)
        finally:
            sock.close()  # adoptStreamPort keeps a duplicate; this one is ours to close
