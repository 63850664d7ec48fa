"""What ``GET /metrics`` shows (Prometheus text format), on a registry of chatd's own.

Counters and histograms are updated where things happen (cheap: a lock and an
addition); the gauges are read from the live objects when scraped, so they
cost nothing between scrapes. Each service has its own registry, so several
chatd services in one process (the tests) do not mix their figures.
"""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Latencies from a few hundred microseconds (a cached read) to seconds (a store outage).
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# Paths → route labels, so that ids and room names do not each become a time series.
_ROUTES = [
    (re.compile(pattern), route)
    for pattern, route in [
        (r"/api/users/[^/]+/ban", "/api/users/{id}/ban"),
        (r"/api/users/[^/]+", "/api/users/{id}"),
        (r"/api/rooms/[^/]+/messages/[^/]+", "/api/rooms/{room}/messages/{seq}"),
        (r"/api/rooms/[^/]+/messages", "/api/rooms/{room}/messages"),
        (r"/api/rooms/[^/]+/files", "/api/rooms/{room}/files"),
        (r"/api/sessions/[^/]+/messages", "/api/sessions/{room}/messages"),
        (r"/api/files/[^/]+", "/api/files/{id}"),
    ]
]
_FIXED = {
    "/api/auth/register", "/api/auth/login", "/api/auth/refresh", "/api/auth/logout",
    "/api/users", "/api/rooms", "/api/sessions", "/healthz", "/metrics", "/ws",
}


def route_of(path: str) -> str:
    """The route label for a request path (``static`` for the page's files, ``/api/other`` for unknown API paths)."""
    if path in _FIXED:
        return path
    if path.startswith("/api/"):
        for pattern, route in _ROUTES:
            if pattern.fullmatch(path):
                return route
        return "/api/other"
    return "static"


class Metrics:
    """chatd's metrics; the gauges read the live objects given to the constructor."""

    def __init__(self, connections=None, hasher=None) -> None:
        """``connections`` (the chat's registry) and ``hasher`` (the password hasher) feed the gauges
        when given (tests may leave them out)."""
        self.registry = registry = CollectorRegistry()
        self.messages_stored = Counter("chatd_messages_stored", "Chat messages stored", registry=registry)
        self.messages_delivered = Counter(
            "chatd_messages_delivered", "Message frames sent to sockets (one per receiving socket)", registry=registry)
        self.delivery_latency = Histogram(
            "chatd_delivery_latency_seconds", "From a message frame's arrival to its ack and broadcast (stored)",
            buckets=_LATENCY_BUCKETS, registry=registry)
        self.store_latency = Histogram(
            "chatd_store_latency_seconds", "Store operations, by operation", ["operation"],
            buckets=_LATENCY_BUCKETS, registry=registry)
        self.slow_consumers = Counter(
            "chatd_slow_consumers_dropped", "Sockets closed (4008) for not reading their frames", registry=registry)
        self.rate_limited = Counter(
            "chatd_rate_limited", "Requests and frames refused by a rate limit", ["kind"], registry=registry)
        self.limit_refusals = Counter(
            "chatd_limit_refusals", "Handshakes, joins, uploads and changes refused by a cap, by cap", ["limit"],
            registry=registry)
        self.http_requests = Counter(
            "chatd_http_requests", "HTTP requests answered, by route and status", ["route", "status"], registry=registry)
        self.connections_open = Gauge("chatd_connections_open", "Open WebSocket connections", registry=registry)
        self.users_online = Gauge("chatd_users_online", "Users with at least one open socket", registry=registry)
        self.rooms_active = Gauge("chatd_rooms_active", "Rooms joined by at least one open socket", registry=registry)
        self.outbox_peak = Gauge(
            "chatd_outbox_peak_bytes", "The largest backlog of unsent bytes a closed socket had", registry=registry)
        self.bcrypt_queue = Gauge(
            "chatd_bcrypt_queue_length", "Password hashes waiting for or running on the bcrypt threads", registry=registry)
        self.largest_outbox = 0
        if connections is not None:
            self.connections_open.set_function(connections.connection_count)
            self.users_online.set_function(connections.online_user_count)
            self.rooms_active.set_function(connections.active_room_count)
        if hasher is not None:
            self.bcrypt_queue.set_function(lambda: hasher.pending)

    def socket_closed(self, outbox_peak: int) -> None:
        """A socket closed; its largest backlog raises ``chatd_outbox_peak_bytes`` if it was larger."""
        self.largest_outbox = max(self.largest_outbox, outbox_peak)
        self.outbox_peak.set(self.largest_outbox)

    def refused(self, limit: str) -> None:
        """Count one refusal by the cap named ``limit`` (sockets_per_user, upload_quota, ...)."""
        self.limit_refusals.labels(limit).inc()

    def http_request(self, path: str, status: int) -> None:
        self.http_requests.labels(route_of(path), str(status)).inc()
        if status == 429:
            self.rate_limited.labels("http").inc()
