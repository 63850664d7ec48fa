"""Refusing a WebSocket opening handshake in chatd's words (SPEC.md's error body), whatever read it.

A refusal never repeats what the client sent: Autobahn's own reasons quote the
request line (a token in the query) or a header value, so only the reasons
chatd itself gives (:data:`OWN_REASONS`) are passed on, and every other one
becomes a fixed message for its status. This is security, not a speed-up: it
applies with the speed-ups on or off (the fast handshake reader is
chatd.web.speedups.handshake).
"""

from __future__ import annotations

from autobahn.websocket.types import ConnectionDeny
from twisted.logger import Logger

from chatd import errors
from chatd.chat import admission
from chatd.errors import ApiError

_log = Logger()

# Reasons chatd itself gives when it refuses a handshake (chatd.web.ws), passed on as the
# message; any other reason comes from Autobahn, may quote the request line or a header (a
# token in the query), and is never repeated to the client or the log.
OWN_REASONS = {
    "invalid token": "The token is missing, invalid, expired or revoked.",
    "banned": "This account is banned.",
    "origin not allowed": "Sockets may not be opened from this origin.",
    **{reason: reason for reason in admission.REASONS.values()},
}
_MESSAGES = {
    400: "This is not a WebSocket handshake chatd accepts.",
    401: "A valid token is required.",
    403: "This connection is not allowed.",
    405: "The WebSocket handshake is a GET.",
    429: "Too many connections; try again shortly.",
    431: "The handshake's request line and headers are too large.",
    500: "Something went wrong on our side.",
}


RETRY_AFTER = 5  # seconds a client refused for too many connections should wait


def refusal(code: int, reason: str) -> ApiError:
    """What a refused handshake answers: SPEC.md's error body for status ``code``, in chatd's words."""
    message = OWN_REASONS.get(reason) or _MESSAGES.get(code) or _MESSAGES[400]
    if code == 426:
        return upgrade_required()
    if code == 503:
        return errors.unavailable()
    if code == 401:
        return errors.unauthorized(message)
    if code == 403:
        return errors.forbidden(message)
    if code == 404:
        return errors.not_found(message)
    if code == 405:
        return ApiError(405, "method_not_allowed", message)
    if code in (413, 431):
        return ApiError(code, "too_large", message)
    if code == 429:
        return errors.rate_limited(RETRY_AFTER, message)
    if code >= 500 and code != 505:
        return ApiError(500, "internal", _MESSAGES[500])
    return ApiError(code if 400 <= code < 500 or code == 505 else 400, "invalid_request", message)


def upgrade_required() -> ApiError:
    """The answer to a plain request for the socket's address (no ``Upgrade: websocket``)."""
    return ApiError(426, "invalid_request", "This address takes WebSocket connections only.",
                    headers={"Upgrade": "websocket"})


def deny(failure):
    """A failed check as the handshake's refusal; a fault of ours is logged here (not by Autobahn), then 500."""
    if failure.check(ConnectionDeny):
        return failure
    refusal = errors.api_error(failure.value)
    if refusal is None:
        _log.failure("unexpected error checking a WebSocket handshake", failure)
        raise ConnectionDeny(ConnectionDeny.INTERNAL_SERVER_ERROR, "Internal server error")
    status = refusal.status
    if status == 403:
        raise ConnectionDeny(403, "banned")
    if status == 503:
        raise ConnectionDeny(503, "store unavailable")
    raise ConnectionDeny(401, "invalid token")
