"""The listening sockets of ``--workers``: bound once by the parent, adopted by every worker.

Both sides read a ``--listen`` description with Twisted's own parser
(``endpoints.serverFromString``), so ``tcp:``, ``tcp6:`` and ``ssl:`` mean
exactly what they mean for a single chatd (interface, backlog, key and
certificate files). The endpoint calls ``listenTCP`` or ``listenSSL`` on the
reactor it was given, a public interface: the parent hands it a :class:`_Binder`
that binds and listens on plain sockets (one per worker, see
:func:`listening_sockets`) and never accepts, and a worker hands it an
:class:`AdoptingReactor` that gives its inherited socket to the real reactor
with ``adoptStreamPort``. For ``ssl:``, the parent binds the TCP sockets and
each worker wraps what it accepts in TLS with the endpoint's context, as
Twisted's own ``listenSSL`` does (``TLSMemoryBIOFactory``).

The parent keeps every socket open while its worker restarts: connections the
kernel gives that socket meanwhile wait in its backlog for the new worker,
none is refused or lost.
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
class BoundListener:
    """The listening sockets the parent bound for ``description``: one per worker, on one port.

    ``tls`` when the workers wrap what they accept in TLS.
    """

    description: str
    sockets: list[socket.socket]
    tls: bool

    @property
    def port(self) -> int:
        """The bound port (the real one for a ``:0`` description)."""
        return self.sockets[0].getsockname()[1]

    @property
    def host(self) -> str:
        return self.sockets[0].getsockname()[0]

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def _family(interface: str) -> int:
    return socket.AF_INET6 if abstract.isIPv6Address(interface) else socket.AF_INET


def _bound(interface: str, port: int, reuse_port: bool) -> socket.socket:
    family = _family(interface)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Twisted does on POSIX
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            # Resolves a scope id (fe80::1%eth0) the way Twisted does.
            address = socket.getaddrinfo(interface, port, family, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)[0][4]
        else:
            address = (interface, port)
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise CannotListenError(interface, port, e) from None
    return sock


def listening_socket(interface: str, port: int, backlog: int) -> socket.socket:
    """A non-blocking socket listening on ``interface:port``, as Twisted's ``listenTCP`` would bind it.

    Raises ``CannotListenError`` when the address is taken or invalid.
    """
    return listening_sockets(interface, port, backlog, 1)[0]


def listening_sockets(interface: str, port: int, backlog: int, count: int) -> list[socket.socket]:
    """``count`` non-blocking sockets listening on one ``interface:port`` (SO_REUSEPORT when more than one).

    With SO_REUSEPORT the kernel spreads new connections evenly over the
    sockets, so one socket per worker spreads them evenly over the workers,
    whether clients arrive in a burst or one at a time (on one shared socket
    the worker that wakes first takes each, and an idle server hands nearly all
    of them to the same worker). Any process of the same user may join such a
    group, though, and take a share of the connections: a probe bound without
    the option first makes a port that anyone already holds (another chatd,
    with its own group) a ``CannotListenError``, as for a single chatd.
    """
    if count > 1 and port != 0:
        _bound(interface, port, reuse_port=False).close()
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = _bound(interface, sockets[0].getsockname()[1] if sockets else port, reuse_port=count > 1)
            sockets.append(sock)
            sock.listen(backlog)
            # The flag is on the socket itself, shared with the worker: adoptStreamPort requires it.
            sock.setblocking(False)
    except Exception:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class _Binder:
    """What a server endpoint sees as its reactor in the parent: ``listen*`` binds sockets, nothing accepts."""

    def __init__(self, description: str, copies: int) -> None:
        self._description = description
        self._copies = copies

    def listenTCP(self, port, factory, backlog=50, interface=""):
        return BoundListener(self._description, listening_sockets(interface, port, backlog, self._copies), tls=False)

    def listenSSL(self, port, factory, contextFactory, backlog=50, interface=""):
        # The endpoint parser has already read the key and certificate: a bad file fails here, in the parent.
        return BoundListener(self._description, listening_sockets(interface, port, backlog, self._copies), tls=True)


def _now(deferred):
    """The result of a Deferred that has already fired (an endpoint's ``listen`` on a synchronous reactor)."""
    results: list = []
    deferred.addBoth(results.append)
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


def bind(description: str, copies: int = 1) -> BoundListener:
    """Bind ``copies`` sockets (one per worker) for one ``--listen`` description, with chatd's listen backlog.

    Raises ``ValueError`` for a kind a worker cannot adopt (``unix:``...) or a
    malformed description, ``CannotListenError`` when the address is taken.
    """
    if kind_of(description) not in SHAREABLE_KINDS:
        raise ValueError(f"--workers shares tcp:, tcp6: and ssl: listeners only, not {description!r}")
    endpoint = endpoints.serverFromString(_Binder(description, copies), with_backlog(description))
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
