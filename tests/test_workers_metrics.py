"""Unit tests for chatd.workers.metrics: one /metrics page for every worker, each series labelled."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.test.requesthelper import DummyRequest

from chatd.workers.metrics import AllWorkersMetrics, OwnMetricsService, merge, own_exposition, parse, render
from chatd.workers.sockets import listening_socket


def registry(messages: int, connections: int) -> CollectorRegistry:
    """A registry shaped like chatd's: a counter with a label and a gauge read when scraped."""
    result = CollectorRegistry()
    Counter("chatd_messages_stored", "Chat messages stored", registry=result).inc(messages)
    Counter("chatd_http_requests", "HTTP requests", ["route"], registry=result).labels("/healthz").inc()
    Gauge("chatd_connections_open", "Open WebSocket connections", registry=result).set_function(lambda: connections)
    return result


def samples(text: bytes) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of an exposition."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text.decode())
            for s in family.samples}


class MergeTests(SynchronousTestCase):
    """Several workers' expositions become one valid page."""

    def test_own_exposition_is_labelled(self):
        """Every sample of a worker's own page carries ``worker="N"``."""
        page = samples(own_exposition(registry(3, 7), 2))
        self.assertEqual(page[("chatd_messages_stored_total", (("worker", "2"),))], 3)
        self.assertEqual(page[("chatd_connections_open", (("worker", "2"),))], 7)
        self.assertEqual(page[("chatd_http_requests_total", (("route", "/healthz"), ("worker", "2")))], 1)
        self.assertTrue(all(dict(labels).get("worker") == "2" for _, labels in page))

    def test_a_cut_off_page_is_not_parsed(self):
        """A page cut off mid-line, or not text, is no page at all (that worker counts as not answering)."""
        page = own_exposition(registry(3, 7), 1)
        self.assertIsNotNone(parse(page))
        self.assertIsNone(parse(page[:page.index(b"chatd_connections_open{") + 10]))
        self.assertIsNone(parse(b"\xff\xfe"))

    def test_families_are_merged_once(self):
        """Two workers' pages merge into one family per name (one HELP and TYPE), holding both workers' samples."""
        text = render(merge([parse(own_exposition(registry(3, 7), 1)), parse(own_exposition(registry(5, 1), 2))]))
        self.assertEqual(text.count(b"# TYPE chatd_connections_open gauge"), 1)
        page = samples(text)
        self.assertEqual(page[("chatd_connections_open", (("worker", "1"),))], 7)
        self.assertEqual(page[("chatd_connections_open", (("worker", "2"),))], 1)
        self.assertEqual(page[("chatd_messages_stored_total", (("worker", "2"),))], 5)


class AllWorkersTests(TestCase):
    """The site's /metrics asks the other workers on their private sockets, on the real reactor."""

    async def serve(self, metrics_registry, index: int) -> int:
        """A worker's private metrics service on a fresh loopback socket, as its parent would bind it: the port."""
        sock = listening_socket("127.0.0.1", 0, 8)
        self.addCleanup(sock.close)
        service = OwnMetricsService(reactor, metrics_registry, index, os.dup(sock.fileno()))
        service.startService()
        self.addCleanup(service.stopService)
        return sock.getsockname()[1]

    async def scrape(self, resource) -> bytes:
        """GET the resource with a dummy request: the body once it finishes."""
        request = DummyRequest([b""])
        request.method = b"GET"
        finished = request.notifyFinish()
        resource.render_GET(request)
        await finished
        self.assertEqual(request.responseHeaders.getRawHeaders(b"content-type")[0].split(b";")[0], b"text/plain")
        return b"".join(request.written)

    async def test_every_worker_answers_in_one_page(self):
        """Worker 1's /metrics holds its own and worker 2's series, and says both are up."""
        port2 = await self.serve(registry(5, 2), 2)
        resource = AllWorkersMetrics(reactor, registry(3, 7), 1, (0, port2))
        text = await self.scrape(resource)
        types = [line for line in text.splitlines() if line.startswith(b"# TYPE ")]
        self.assertEqual(len(types), len(set(types)), "each family once, or Prometheus refuses the page")
        page = samples(text)
        self.assertEqual(page[("chatd_connections_open", (("worker", "1"),))], 7)
        self.assertEqual(page[("chatd_connections_open", (("worker", "2"),))], 2)
        self.assertEqual(page[("chatd_worker_up", (("worker", "1"),))], 1)
        self.assertEqual(page[("chatd_worker_up", (("worker", "2"),))], 1)

    async def test_a_silent_worker_is_left_out(self):
        """A worker that does not answer in time (its socket open but nobody accepting: restarting), or whose
        port refuses, is absent from the page and marked down; the page still comes."""
        silent = listening_socket("127.0.0.1", 0, 8)
        self.addCleanup(silent.close)
        closed = listening_socket("127.0.0.1", 0, 8)
        closed_port = closed.getsockname()[1]
        closed.close()
        resource = AllWorkersMetrics(reactor, registry(3, 7), 1, (0, silent.getsockname()[1], closed_port),
                                     timeout=0.3)
        page = samples(await self.scrape(resource))
        self.assertEqual(page[("chatd_worker_up", (("worker", "2"),))], 0)
        self.assertEqual(page[("chatd_worker_up", (("worker", "3"),))], 0)
        self.assertEqual({dict(labels)["worker"] for name, labels in page if name == "chatd_connections_open"}, {"1"})
