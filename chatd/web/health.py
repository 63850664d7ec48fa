"""``GET /healthz``: are the store and the bus reachable right now? (SPEC.md, ``GET /healthz``)"""

from __future__ import annotations

from twisted.internet.defer import ensureDeferred
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from chatd.storage.records import StoreUnavailable
from chatd.web.render import json_body


class HealthResource(Resource):
    """The store decides between 200 and 503; the bus, when there is one, between ``ok`` and ``degraded``.

    A chatd whose bus is down still serves its own sockets and delivers other
    processes' messages from the store (SPEC.md, *Several processes and
    machines*): a load balancer must keep sending it clients, so that is a 200
    ``degraded``, never a 503. Without a bus there is no ``bus`` field.
    """

    isLeaf = True

    def __init__(self, store, bus=None) -> None:
        super().__init__()
        self._store = store
        self._bus = bus  # anything with an ``up`` property (chatd.bus.redis.RedisBus), or None

    def render_GET(self, request):
        gone: list = []
        request.notifyFinish().addBoth(gone.append)
        ensureDeferred(self._answer(request, gone))
        return NOT_DONE_YET

    async def _answer(self, request, gone: list) -> None:
        try:
            await self._store.ping()
            parts = {"store": "ok"}
        except StoreUnavailable:
            parts = {"store": "down"}
        if self._bus is not None:
            parts["bus"] = "ok" if self._bus.up else "down"
        if parts["store"] != "ok":
            status, code = "down", 503
        else:
            status, code = ("ok" if parts.get("bus", "ok") == "ok" else "degraded"), 200
        body = json_body(request, code, {"status": status, **parts})
        if not gone:  # the client may have left while we waited for the store
            request.write(body)
            request.finish()
