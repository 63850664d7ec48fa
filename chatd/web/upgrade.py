"""``/ws`` in the site: where a WebSocket handshake that came through Twisted's HTTP layer is handed to Autobahn.

Every handshake takes this way when the speed-ups are off (``CHATD_SPEEDUPS=0``);
with them on, only an upgrade that comes after other requests on a kept-alive
connection does (the others are routed by their first bytes,
chatd.web.speedups.router). A plain request here gets a short 426 in chatd's
words, rather than Autobahn's status page.
"""

from __future__ import annotations

from autobahn.twisted.resource import WebSocketResource

from chatd.web import handshake
from chatd.web.render import error_body


class ChatWebSocketResource(WebSocketResource):
    """``/ws`` in the site: upgrades are handed to Autobahn; anything else gets a short 426."""

    def render(self, request):
        upgrade = {token.strip().lower() for token in (request.getHeader("upgrade") or "").split(",")}
        if "websocket" not in upgrade:
            return error_body(request, handshake.upgrade_required())
        return super().render(request)


def ws_resource(factory) -> WebSocketResource:
    """The resource mounted at ``/ws`` in the site."""
    return ChatWebSocketResource(factory)
