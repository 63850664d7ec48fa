"""The HTTP site: static page at ``/``, REST under ``/api``, ``/healthz``; and its listeners."""

from __future__ import annotations

import os

from twisted.application.service import Service
from twisted.internet import defer, endpoints
from twisted.logger import Logger
from twisted.python.filepath import FilePath
from twisted.web import server, static
from twisted.web.resource import NoResource

from chatd.web import params
from chatd.web.proxies import NOBODY, TrustedProxies, request_client_host
from chatd.web.requests import ChatdChannel, ChatdRequest


def _text(value) -> str:
    """Printable, quote-safe text for a log line (control characters escaped)."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value.encode("unicode_escape").decode("ascii").replace('"', '\\"')


def access_log_line(timestamp: str, request) -> str:
    """A combined-log-style line with the path only.

    Twisted's default logs the full URI, so ``/ws?token=…`` would put a token in
    the log; the Referer header may carry one too, so it is left out. The address is
    the client's (a trusted proxy's X-Forwarded-For, chatd.web.proxies).
    """
    path = request.uri.split(b"?", 1)[0]
    agent = request.getHeader("user-agent") or "-"
    return '"%s" - - %s "%s %s %s" %d %s "%s"' % (
        _text(request_client_host(request) or "-"),
        timestamp,
        _text(request.method),
        _text(path),
        _text(request.clientproto),
        request.code,
        request.sentLength or "-",
        _text(agent),
    )


# The page's policy: no inline script or style, nothing framed, nothing fetched or posted elsewhere.
# img-src admits blob: (file previews are fetched with the token) and data:; connect-src 'self'
# covers the same-host ws:/wss: socket (CSP3).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
STATIC_HEADERS = {
    b"content-security-policy": CONTENT_SECURITY_POLICY.encode("ascii"),
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
}


def _harden(request) -> None:
    for name, value in STATIC_HEADERS.items():
        request.setHeader(name, value)


class _NotFound(NoResource):
    """404 for a missing, hidden or outside file; the same page and headers whichever it was."""

    def __init__(self) -> None:
        super().__init__("File not found.")

    def render(self, request):
        _harden(request)
        return super().render(request)


def _inside(path: str, root: str) -> bool:
    """Whether ``path`` is ``root`` or below it (both already real paths)."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class StaticFiles(static.File):
    """The browser page from ``--static``, with the page's security headers on every response.

    Only what is meant to be published is served: a path segment starting with
    ``.`` (``/.env``, ``/.git/config``) and anything whose real path, symlinks
    resolved, lies outside the real path of the static root (a symlink to the
    JWT secret) are 404, exactly like a missing file, so a probe learns nothing.
    Directories without an index are 404 too, not listings.
    """

    childNotFound = _NotFound()

    def __init__(self, path: str, *args, root: str | None = None, **kwargs) -> None:
        super().__init__(path, *args, **kwargs)
        self.root = root if root is not None else os.path.realpath(path)

    def getChild(self, path, request):
        name = path.decode("utf-8", "replace") if isinstance(path, bytes) else path
        if name.startswith("."):
            return self.childNotFound
        child = super().getChild(path, request)
        # realpath does blocking I/O, as the stat calls of static.File do: local, and cheap.
        if isinstance(child, StaticFiles) and not _inside(os.path.realpath(child.path), self.root):
            return self.childNotFound
        return child

    def createSimilarFile(self, path):
        # static.File's, with the root handed down rather than resolved again for each child.
        child = self.__class__(path, self.defaultType, self.ignoredExts, self.registry, root=self.root)
        child.processors = self.processors
        child.indexNames = self.indexNames[:]
        child.childNotFound = self.childNotFound
        return child

    def render(self, request):
        _harden(request)
        return super().render(request)

    def directoryListing(self):
        return self.childNotFound


# Twisted's default keeps a silent connection for 12 hours.
IDLE_TIMEOUT = 60
# From a request's first byte to the end of its head and (non-upload) body.
REQUEST_DEADLINE = 30


class CountingSite(server.Site):
    """chatd's Site: bounded bodies, a gate for uploads, timeouts; counts answers by route and status.

    ``max_body`` bounds an upload's body, ``small_body`` every other; ``gate`` (see
    :class:`chatd.web.api.UploadGate`) checks an upload from its head before its body
    is read. :class:`chatd.web.requests.ChatdRequest` reads all three from here.
    ``trusted_proxies`` decide the client address (chatd.web.proxies).
    """

    protocol = ChatdChannel

    def __init__(self, resource, metrics, *, max_body: int, small_body: int = params.MAX_BODY, gate=None,
                 timeout: float = IDLE_TIMEOUT, request_deadline: float = REQUEST_DEADLINE,
                 trusted_proxies: TrustedProxies = NOBODY, **kwargs) -> None:
        super().__init__(resource, requestFactory=ChatdRequest, timeout=timeout, **kwargs)
        self._metrics = metrics
        self.max_body = max_body
        self.small_body = small_body
        self.gate = gate
        self.request_deadline = request_deadline
        self.trusted_proxies = trusted_proxies
        self.displayTracebacks = False

    def log(self, request) -> None:
        super().log(request)
        if self._metrics is not None:
            self._metrics.http_request(request.path.decode("latin-1"), request.code)


def build_site(static_dir: str, children: dict[bytes, object], metrics=None, max_body: int = 1 << 62,
               gate=None, reactor=None, request_deadline: float = REQUEST_DEADLINE,
               trusted_proxies: TrustedProxies = NOBODY) -> server.Site:
    """The site: the page at ``/``, ``children`` beside it; uploads up to ``max_body``, checked by ``gate``."""
    root = StaticFiles(FilePath(static_dir).path)
    for name, resource in children.items():
        root.putChild(name, resource)
    return CountingSite(root, metrics, max_body=max_body, gate=gate, logFormatter=access_log_line, reactor=reactor,
                        request_deadline=request_deadline, trusted_proxies=trusted_proxies)


LISTEN_BACKLOG = 1024


def with_backlog(description: str) -> str:
    """A TCP or TLS endpoint with a listen backlog of 1024 unless it sets its own.

    Twisted's default of 50 overflows when a hundred clients reconnect at once
    (after a restart, say): the kernel drops their SYNs and they wait a second to retry.
    """
    kind = description.split(":", 1)[0]
    if kind in ("tcp", "ssl", "tcp6") and "backlog=" not in description:
        return f"{description}:backlog={LISTEN_BACKLOG}"
    return description


class ListeningService(Service):
    """Listens on every ``--listen`` endpoint; ``ports`` lists the bound ports once started.

    ``strports.service`` would do, but tests and the daemon's log want the
    actual port of a ``tcp:0`` endpoint.
    """

    _log = Logger()

    def __init__(self, reactor, descriptions: list[str], factory) -> None:
        self._reactor = reactor
        self._descriptions = descriptions
        self._factory = factory
        self.ports: list = []
        self.listening: defer.Deferred | None = None

    def startService(self) -> None:
        super().startService()
        self.listening = defer.Deferred.fromCoroutine(self._listen())

    async def _listen(self) -> list:
        for description in self._descriptions:
            endpoint = endpoints.serverFromString(self._reactor, with_backlog(description))
            port = await endpoint.listen(self._factory)
            self.ports.append(port)
            address = port.getHost()
            self._log.info("listening on {kind} {host}:{port}", kind=description.split(":", 1)[0], host=address.host, port=address.port)
        return self.ports

    async def stopService(self) -> None:
        super().stopService()
        if self.listening is not None:
            await self.listening
        ports, self.ports = self.ports, []
        for port in ports:
            await defer.maybeDeferred(port.stopListening)  # IListeningPort: "may return a Deferred"
