"""What every group of REST routes shares: the token, the client address, bodies, paging, failures."""

from __future__ import annotations

from twisted.internet.defer import CancelledError
from twisted.logger import Logger
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from chatd import errors
from chatd.chat.frames import ROOM
from chatd.web import params
from chatd.web.proxies import request_client_host
from chatd.web.render import error_body, json_bytes

_log = Logger()


def bearer_token(request) -> str | None:
    header = request.getHeader("authorization")
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


def client_address(request) -> str:
    """The client's address for per-address limits: the peer's, or a trusted proxy's word (chatd.web.proxies)."""
    return request_client_host(request) or "unix"


def json_object(request, empty_ok: bool = False) -> dict:
    """The JSON object in the body; with ``empty_ok``, no body at all is an empty object."""
    request.content.seek(0)
    # Read no more than the limit (and one byte to notice a larger body): never a whole upload.
    raw = request.content.read(params.MAX_BODY + 1)
    if empty_ok and not raw.strip():
        return {}
    return params.parse_json_object(raw, request.getHeader("content-type"))


def query(request, name: bytes) -> str | None:
    values = request.args.get(name)
    return values[0].decode("utf-8", "replace") if values else None


def room_name(room: str) -> str:
    """A room from a path, or 404: a malformed name names no room."""
    if not ROOM.fullmatch(room):
        raise errors.not_found("No such room.")
    return room


def messages_page(request, page: dict) -> bytes:
    """A history page; its messages are already JSON, so they are spliced in, not re-encoded."""
    return json_bytes(request, 200, messages_page_body(page["messages"], page["next_before"]))


def messages_page_body(messages: list[bytes], next_before: int | None) -> bytes:
    """``{"messages": [...], "next_before": ...}`` from messages already encoded."""
    cursor = b"null" if next_before is None else str(next_before).encode()
    return b'{"messages":[' + b",".join(messages) + b'],"next_before":' + cursor + b"}"


class Routes:
    """A group of routes: the principal behind a request's token comes from ``auth``."""

    def __init__(self, auth) -> None:
        self._auth = auth

    async def principal(self, request):
        return await self._auth.authenticate(bearer_token(request))


def render_failure(request, failure):
    """Every failure of a route as SPEC.md's error body: its ApiError, 503 for an outage, 404/405 for
    routing, 500 (logged, no trace in the body) for anything else."""
    if failure.check(CancelledError):
        return None  # the client went away; nobody is listening
    refusal = errors.api_error(failure.value)
    if refusal is not None:
        return error_body(request, refusal)
    if failure.check(MethodNotAllowed):
        allowed = ", ".join(failure.value.valid_methods or [])
        request.setHeader(b"Allow", allowed.encode("ascii"))
        return error_body(request, errors.ApiError(405, "method_not_allowed", "Method not allowed here."))
    if failure.check(NotFound):
        return error_body(request, errors.not_found("No such route."))
    if failure.check(HTTPException):
        return error_body(request, errors.invalid(failure.value.description or "Bad request."))
    _log.failure("unhandled error in {method} {path}", failure, method=request.method, path=request.path)
    return error_body(request, errors.ApiError(500, "internal", "Something went wrong on our side."))
