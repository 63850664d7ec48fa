"""``GET /metrics`` as a Prometheus scraper sees it, changing as users chat (real sockets, real store)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from twisted.trial.unittest import TestCase

from chatd.metrics import route_of
from chatd.ratelimit import Rate
from tests.harness import start_server, wait_until
from tests.wsclient import joined


class MetricsTests(TestCase):
    timeout = 60

    async def setUp(self):
        self.server = await start_server(self, socket_rate=Rate(1, 2))
        self.http = self.server.client()

    async def scrape(self) -> dict:
        """{(name, labels as a sorted tuple): value} of one scrape."""
        response = await self.http.request("GET", "/metrics")
        self.assertEqual(response.status, 200)
        self.assertTrue(response.header("content-type").startswith("text/plain"))
        samples = {}
        for family in text_string_to_metric_families(response.body.decode()):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    async def test_figures_follow_the_chat(self):
        """/metrics follows the chat: open sockets, users online, active rooms, messages stored and delivered,
        delivery and store latency, HTTP requests by route, and socket rate-limit refusals."""
        before = await self.scrape()
        self.assertEqual(before[("chatd_connections_open", ())], 0)
        self.assertEqual(before[("chatd_messages_stored_total", ())], 0)
        self.assertEqual(before[("chatd_bcrypt_queue_length", ())], 0)

        alice, bob = await self.http.register("alice"), await self.http.register("bob")
        sockets = [await joined(self.server.url, session["token"], test=self) for session in (alice, bob)]
        sockets[0].send({"type": "message", "room": "lobby", "text": "hello"})
        await sockets[0].next("ack")
        await sockets[1].next("message")

        during = await self.scrape()
        self.assertEqual(during[("chatd_connections_open", ())], 2)
        self.assertEqual(during[("chatd_users_online", ())], 2)
        self.assertEqual(during[("chatd_rooms_active", ())], 1)
        self.assertEqual(during[("chatd_messages_stored_total", ())], 1)
        self.assertEqual(during[("chatd_messages_delivered_total", ())], 2)  # alice's own copy and bob's
        self.assertEqual(during[("chatd_delivery_latency_seconds_count", ())], 1)
        register = ("chatd_http_requests_total", (("route", "/api/auth/register"), ("status", "201")))
        self.assertEqual(during[register], 2)
        self.assertEqual(during[("chatd_http_requests_total", (("route", "/metrics"), ("status", "200")))], 1)
        inserts = [v for (name, labels), v in during.items()
                   if name == "chatd_store_latency_seconds_count" and ("operation", "insert_many") in labels]
        self.assertEqual(len(inserts), 1)
        self.assertGreaterEqual(inserts[0], 1)

        for _ in range(4):  # rate 1/s, burst 2: some of these are refused
            sockets[1].send({"type": "ping"})
        await sockets[1].next("error")
        await sockets[1].close()

        async def bob_gone():
            after = await self.scrape()
            return after[("chatd_connections_open", ())] == 1 and after[("chatd_users_online", ())] == 1

        await wait_until(bob_gone, 5, "bob's socket to be counted out")
        after = await self.scrape()
        self.assertGreaterEqual(after[("chatd_rate_limited_total", (("kind", "socket"),))], 1)

    async def test_http_429_counts_as_rate_limited(self):
        """An HTTP 429 from the auth rate limit is counted as rate_limited_total{kind="http"}."""
        server = await start_server(self, auth_rate=Rate(1, 1))
        http = server.client()
        statuses = [(await http.request("POST", "/api/auth/login", {"username": "x", "password": "y" * 8})).status
                    for _ in range(3)]
        self.assertIn(429, statuses)
        response = await http.request("GET", "/metrics")
        self.assertIn(b'chatd_rate_limited_total{kind="http"}', response.body)


class RouteLabelTests(TestCase):
    def test_ids_and_names_do_not_become_labels(self):
        """Request routes are labelled by their template, so user ids, room names and seqs never become label values."""
        cases = {
            "/api/users/65f0c0ffee/ban": "/api/users/{id}/ban",
            "/api/users/65f0c0ffee": "/api/users/{id}",
            "/api/rooms/lobby/messages/12": "/api/rooms/{room}/messages/{seq}",
            "/api/rooms/lobby/messages": "/api/rooms/{room}/messages",
            "/api/sessions/lobby/messages": "/api/sessions/{room}/messages",
            "/api/files/abc": "/api/files/{id}",
            "/api/auth/login": "/api/auth/login",
            "/api/nonsense/1/2/3": "/api/other",
            "/index.html": "static",
            "/": "static",
        }
        for path, route in cases.items():
            with self.subTest(path=path):
                self.assertEqual(route_of(path), route)
