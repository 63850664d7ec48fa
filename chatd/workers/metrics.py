"""``/metrics`` under ``--workers``: every worker's own figures, labelled, from whichever worker a scrape reaches.

The kernel gives a scrape's connection to any worker, so one worker's figures
alone would jump between workers' counters from one scrape to the next. Each
worker's metrics stay its own (one registry per process, nothing shared), and
each worker also serves them on a private loopback socket that the parent bound
for its slot and keeps across restarts. The site's ``/metrics`` asks every other
worker there and answers them all in one page, every series labelled
``worker="N"``, plus ``chatd_worker_up{worker="N"}`` (0 for a worker that did
not answer within 2 s, a restarting one: its series are then absent from that
scrape rather than wrong). Sum over ``worker`` in queries for machine totals.
"""

from __future__ import annotations

import socket

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from twisted.application.service import Service
from twisted.internet import defer, error, protocol
from twisted.logger import Logger
from twisted.web import server
from twisted.web.resource import Resource

WORKER_LABEL = "worker"
PEER_TIMEOUT = 2.0


def labelled(families, index: int) -> list[Metric]:
    """Copies of ``families`` (``registry.collect()``) with ``worker="index"`` on every sample."""
    copies = []
    for family in families:
        copy = Metric(family.name, family.documentation, family.type, family.unit)
        copy.samples = [s._replace(labels={**s.labels, WORKER_LABEL: str(index)}) for s in family.samples]
        copies.append(copy)
    return copies


class _Families:
    """A collector that yields fixed families, to render them with prometheus_client's own writer."""

    def __init__(self, families) -> None:
        self._families = families

    def collect(self):
        return self._families


def render(families) -> bytes:
    """``families`` in the Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(list(families)))
    return generate_latest(registry)


def own_exposition(registry, index: int) -> bytes:
    """This worker's metrics as text, labelled with its index."""
    return render(labelled(registry.collect(), index))


def parse(exposition: bytes) -> list[Metric] | None:
    """The families of a worker's exposition, or None if it is not one (a peer cut off mid-answer)."""
    try:
        return list(text_string_to_metric_families(exposition.decode("utf-8")))
    except (ValueError, UnicodeDecodeError, IndexError):
        return None


def merge(pages: list[list[Metric]]) -> list[Metric]:
    """Several workers' families, one family per name, in first-seen order.

    Every worker runs the same code, so their families agree; their samples
    differ by the ``worker`` label, and a family gathers them all.
    """
    merged: dict[str, Metric] = {}
    for families in pages:
        for family in families:
            if family.name in merged:
                merged[family.name].samples.extend(family.samples)
            else:
                merged[family.name] = family
    return list(merged.values())


class AllWorkersMetrics(Resource):
    """The site's ``/metrics`` in a worker: this worker's figures and every other worker's, labelled."""

    isLeaf = True
    _log = Logger()

    def __init__(self, reactor, registry, index: int, ports: tuple[int, ...],
                 timeout: float = PEER_TIMEOUT) -> None:
        super().__init__()
        self._reactor = reactor
        self._registry = registry
        self._index = index
        self._ports = ports
        self._timeout = timeout

    def render_GET(self, request):
        gone: list = []
        request.notifyFinish().addBoth(gone.append)
        defer.ensureDeferred(self._answer(request, gone)).addErrback(
            lambda failure: self._log.failure("answering /metrics", failure))
        return server.NOT_DONE_YET

    async def _answer(self, request, gone: list) -> None:
        peers = [(index, port) for index, port in enumerate(self._ports, 1) if index != self._index]
        answers = await defer.gatherResults([defer.ensureDeferred(self._fetch(port)) for _, port in peers])
        # Our own page goes through the parser too, so that its families have the same shape as the others'
        # (the parser makes a counter's _created samples a family of their own).
        pages = [parse(own_exposition(self._registry, self._index))]
        answered = {self._index: True}
        for (index, _), answer in zip(peers, answers):
            families = parse(answer) if answer is not None else None
            answered[index] = families is not None
            if families is not None:
                pages.append(families)
        up = GaugeMetricFamily("chatd_worker_up", "Whether the worker answered this scrape (1) or not (0)",
                               labels=[WORKER_LABEL])
        for index in range(1, len(self._ports) + 1):
            up.add_metric([str(index)], 1 if answered[index] else 0)
        body = render(merge(pages) + [up])
        if not gone:  # the scraper may have left while we asked the others
            request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode("ascii"))
            request.write(body)
            request.finish()

    async def _fetch(self, port: int) -> bytes | None:
        """Worker metrics from a private port, or None if it does not answer in time (restarting, stuck)."""
        factory = _FetchFactory()
        connector = self._reactor.connectTCP("127.0.0.1", port, factory, timeout=self._timeout)
        timer = self._reactor.callLater(self._timeout, factory.give_up, connector)
        try:
            return await factory.done
        finally:
            if timer.active():
                timer.cancel()


class _Fetch(protocol.Protocol):
    """``GET /metrics`` over HTTP/1.0 (the answer ends with the connection), the body if the status is 200."""

    def connectionMade(self) -> None:
        self._data = []
        self.transport.write(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")

    def dataReceived(self, data: bytes) -> None:
        self._data.append(data)

    def connectionLost(self, reason) -> None:
        head, _, body = b"".join(self._data).partition(b"\r\n\r\n")
        ok = head.startswith((b"HTTP/1.0 200 ", b"HTTP/1.1 200 ")) and reason.check(error.ConnectionDone)
        self.factory.finished(body if ok else None)


class _FetchFactory(protocol.ClientFactory):
    """One fetch; quiet, unlike twisted.web's client factories, which log every scrape's connection."""

    protocol = _Fetch
    noisy = False

    def __init__(self) -> None:
        self.done: defer.Deferred = defer.Deferred()

    def finished(self, body: bytes | None) -> None:
        if not self.done.called:
            self.done.callback(body)

    def give_up(self, connector) -> None:
        """Too slow: no answer, whatever may still arrive."""
        self.finished(None)
        connector.disconnect()

    def clientConnectionFailed(self, connector, reason) -> None:
        self.finished(None)


class _OwnMetrics(Resource):
    isLeaf = True

    def __init__(self, registry, index: int) -> None:
        super().__init__()
        self._registry = registry
        self._index = index

    def render_GET(self, request):
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode("ascii"))
        return own_exposition(self._registry, self._index)


class _QuietSite(server.Site):
    """No access log: every scrape of ``/metrics`` would otherwise log a line in every other worker."""

    def log(self, request) -> None:
        pass


class OwnMetricsService(Service):
    """Serves this worker's labelled metrics at ``/metrics`` on the private socket its parent bound for it."""

    name = "worker-metrics"

    def __init__(self, reactor, registry, index: int, fd: int) -> None:
        self._reactor = reactor
        self._fd = fd
        root = Resource()
        root.putChild(b"metrics", _OwnMetrics(registry, index))
        self._site = _QuietSite(root, reactor=reactor)
        self.port = None

    def startService(self) -> None:
        super().startService()
        sock = socket.socket(fileno=self._fd)
        try:
            self.port = self._reactor.adoptStreamPort(sock.fileno(), sock.family, self._site)
        finally:
            sock.close()

    def stopService(self):
        super().stopService()
        port, self.port = self.port, None
        return defer.maybeDeferred(port.stopListening) if port is not None else None
