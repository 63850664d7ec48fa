"""``GET /healthz``: is the store (and later the bus) reachable right now?"""

from __future__ import annotations

from twisted.internet.defer import ensureDeferred
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from chatd.storage.records import StoreUnavailable
from chatd.web.render import json_body


class HealthResource(Resource):
    """200 when the store answers a ping, else 503 naming the part that is down (SPEC.md)."""

    isLeaf = True

    def __init__(self, store) -> None:
        super().__init__()
        self._store = store

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
        healthy = all(state == "ok" for state in parts.values())
        body = json_body(request, 200 if healthy else 503, {"status": "ok" if healthy else "down", **parts})
        if not gone:  # the client may have left while we waited for the store
            request.write(body)
            request.finish()
