"""The REST routes under ``/api`` (SPEC.md's table), as Klein methods.

Each route authenticates first (SPEC.md: before the body is validated), parses
the body, calls the domain and renders the result. Every failure goes through
:meth:`ApiRoutes.render_failure`, so clients always get SPEC.md's error body.
"""

from __future__ import annotations

from urllib.parse import quote, unquote_to_bytes

from klein import Klein
from twisted.internet.defer import CancelledError
from twisted.logger import Logger
from twisted.web.resource import Resource
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from chatd import errors
from chatd.accounts import validation
from chatd.accounts.auth import Accounts, Principal
from chatd.chat.frames import ROOM
from chatd.chat.editing import MessageEditor
from chatd.files.uploads import IMAGE_TYPES, Files
from chatd.chat.history import History
from chatd.web import multipart
from chatd.web.cors import OriginPolicy, apply_cors
from chatd.web.download import send_file
from chatd.web.render import error_body, json_body, json_bytes, no_content


def bearer_token(request) -> str | None:
    header = request.getHeader("authorization")
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


def client_address(request) -> str:
    address = request.getClientAddress()
    return getattr(address, "host", None) or "unix"


def _body(request, empty_ok: bool = False) -> dict:
    """The JSON object in the body; with ``empty_ok``, no body at all is an empty object."""
    request.content.seek(0)
    # Read no more than the limit (and one byte to notice a larger body): never a whole upload.
    raw = request.content.read(validation.MAX_BODY + 1)
    if empty_ok and not raw.strip():
        return {}
    return validation.parse_json_object(raw, request.getHeader("content-type"))


class ApiRoutes:
    """Klein routes for auth, users, rooms and sessions; state lives on the instance."""

    app = Klein()
    _log = Logger()

    def __init__(self, accounts: Accounts, history: History, editor: MessageEditor, files: Files) -> None:
        self.accounts = accounts
        self.history = history
        self.editor = editor
        self.files = files

    async def _principal(self, request) -> Principal:
        return await self.accounts.authenticate(bearer_token(request))

    # -- auth --------------------------------------------------------------

    @app.route("/auth/register", methods=["POST"])
    async def register(self, request):
        address = client_address(request)
        self.accounts.limit_address(address)
        return json_body(request, 201, await self.accounts.register(_body(request), address))

    @app.route("/auth/login", methods=["POST"])
    async def login(self, request):
        address = client_address(request)
        self.accounts.limit_address(address)
        return json_body(request, 200, await self.accounts.login(_body(request), address))

    @app.route("/auth/refresh", methods=["POST"])
    async def refresh(self, request):
        self.accounts.limit_address(client_address(request))
        principal = await self._principal(request)
        return json_body(request, 200, self.accounts.refresh(principal))

    @app.route("/auth/logout", methods=["POST"])
    async def logout(self, request):
        await self.accounts.logout(await self._principal(request))
        return no_content(request)

    # -- users -------------------------------------------------------------

    @app.route("/users", methods=["GET"])
    async def list_users(self, request):
        await self._principal(request)
        args = request.args
        limit = validation.page_limit(_query(args, b"limit"))
        online = validation.flag(_query(args, b"online"), "online")
        return json_body(request, 200, await self.accounts.list_users(limit, _query(args, b"after"), online))

    @app.route("/users/<user_id>", methods=["GET"])
    async def get_user(self, request, user_id):
        await self._principal(request)
        return json_body(request, 200, await self.accounts.get_user(user_id))

    @app.route("/users/<user_id>", methods=["PATCH", "PUT"])
    async def update_user(self, request, user_id):
        principal = await self._principal(request)
        changes = _body(request)
        return json_body(request, 200, await self.accounts.update_user(principal, user_id, changes, client_address(request)))

    @app.route("/users/<user_id>", methods=["DELETE"])
    async def delete_user(self, request, user_id):
        await self.accounts.delete_user(await self._principal(request), user_id)
        return no_content(request)

    @app.route("/users/<user_id>/ban", methods=["POST"])
    async def ban_user(self, request, user_id):
        principal = await self._principal(request)
        await self.accounts.ban(principal, user_id, validation.ban(_body(request, empty_ok=True)))
        return no_content(request)

    @app.route("/users/<user_id>/ban", methods=["DELETE"])
    async def unban_user(self, request, user_id):
        await self.accounts.unban(await self._principal(request), user_id)
        return no_content(request)

    # -- rooms and sessions ------------------------------------------------

    @app.route("/rooms", methods=["GET"])
    async def list_rooms(self, request):
        await self._principal(request)
        return json_body(request, 200, {"rooms": await self._store_read(self.history.rooms())})

    @app.route("/rooms/<room>/messages", methods=["GET"])
    async def room_messages(self, request, room):
        await self._principal(request)
        return _messages_page(request, await self._page(request, room))

    @app.route("/rooms/<room>/reads", methods=["GET"])
    async def room_reads(self, request, room):
        await self._principal(request)
        if not ROOM.fullmatch(room):
            raise errors.not_found("No such room.")
        return json_body(request, 200, {"reads": await self._store_read(self.history.reads(room))})

    @app.route("/rooms/<room>/messages/<seq>", methods=["PATCH"])
    async def edit_message(self, request, room, seq):
        principal = await self._principal(request)
        room, number = _message_address(room, seq)
        text = validation.message_edit(_body(request))
        return json_bytes(request, 200, await self.editor.edit(principal, room, number, text))

    @app.route("/rooms/<room>/messages/<seq>", methods=["DELETE"])
    async def delete_message(self, request, room, seq):
        principal = await self._principal(request)
        await self.editor.delete(principal, *_message_address(room, seq))
        return no_content(request)

    # -- files -------------------------------------------------------------

    @app.route("/rooms/<room>/files", methods=["POST"])
    async def upload_file(self, request, room):
        principal = await self._principal(request)
        request.content.seek(0)
        name, chunks = multipart.file_field(request.content, request.getHeader("content-type"))
        return json_body(request, 201, await self.files.upload(principal, room, name, chunks))

    @app.route("/files/<file_id>", methods=["GET"])
    async def download_file(self, request, file_id):
        principal = await self._principal(request)
        record, reader = await self.files.open(principal, file_id)
        request.setHeader(b"Content-Type", record.content_type.encode("ascii"))
        request.setHeader(b"Content-Length", str(record.size).encode("ascii"))
        request.setHeader(b"Content-Disposition", content_disposition(record))
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        # Even shown inline, a file is never a page that runs anything.
        request.setHeader(b"Content-Security-Policy", b"default-src 'none'; sandbox")
        request.setHeader(b"Cache-Control", b"private, max-age=86400")
        await send_file(request, reader, record.size)
        return b""

    @app.route("/sessions", methods=["GET"])
    async def sessions(self, request):
        principal = await self._principal(request)
        return json_body(request, 200, {"sessions": await self._store_read(self.history.sessions(principal.user))})

    @app.route("/sessions/<room>/messages", methods=["GET"])
    async def session_messages(self, request, room):
        principal = await self._principal(request)
        if room not in principal.user.rooms:
            raise errors.not_found("You are not a member of that room.")
        return _messages_page(request, await self._page(request, room))

    async def _page(self, request, room: str) -> dict:
        if not ROOM.fullmatch(room):
            raise errors.not_found("No such room.")
        limit = validation.page_limit(_query(request.args, b"limit"), maximum=200)
        before = validation.cursor(_query(request.args, b"before"), "before")
        return await self._store_read(self.history.page(room, limit, before))

    @staticmethod
    @errors.store_errors_as_503
    async def _store_read(reading):
        return await reading

    # -- failures ----------------------------------------------------------

    @app.handle_errors(Exception)
    def render_failure(self, request, failure):
        if failure.check(CancelledError):
            return None  # the client went away; nobody is listening
        if failure.check(errors.ApiError):
            return error_body(request, failure.value)
        if failure.check(MethodNotAllowed):
            allowed = ", ".join(failure.value.valid_methods or [])
            request.setHeader(b"Allow", allowed.encode("ascii"))
            return error_body(request, errors.ApiError(405, "method_not_allowed", "Method not allowed here."))
        if failure.check(NotFound):
            return error_body(request, errors.not_found("No such route."))
        if failure.check(HTTPException):
            return error_body(request, errors.invalid(failure.value.description or "Bad request."))
        self._log.failure("unhandled error in {method} {path}", failure, method=request.method, path=request.path)
        return error_body(request, errors.ApiError(500, "internal", "Something went wrong on our side."))


def _messages_page(request, page: dict) -> bytes:
    """A history page; its messages are already JSON, so they are spliced in, not re-encoded."""
    next_before = b"null" if page["next_before"] is None else str(page["next_before"]).encode()
    return json_bytes(request, 200, b'{"messages":[' + b",".join(page["messages"]) + b'],"next_before":' + next_before + b"}")


def content_disposition(record) -> bytes:
    """``inline`` for the images browsers show, ``attachment`` for anything else; the name in both forms."""
    kind = "inline" if record.content_type in IMAGE_TYPES else "attachment"
    plain = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in record.name)
    return f"{kind}; filename=\"{plain}\"; filename*=UTF-8''{quote(record.name, safe='')}".encode("ascii")


def _message_address(room: str, seq: str) -> tuple[str, int]:
    """(room, seq) of a message path, or 404: a malformed address names no message."""
    if not ROOM.fullmatch(room) or not seq.isascii() or not seq.isdigit() or len(seq) > 18 or int(seq) < 1:
        raise errors.not_found("No such message.")
    return room, int(seq)


def _query(args: dict, name: bytes) -> str | None:
    values = args.get(name)
    return values[0].decode("utf-8", "replace") if values else None


class UploadGate:
    """Who may send an upload's body: checked from its head, before the body is read (chatd.web.requests).

    The same checks, in the same order, as the upload route: the token (401, 403 when
    banned, 503 when the store is away), then the room (404 malformed, 403 not a member)
    and the user's upload quota (429). The route checks again once the body is in.
    """

    def __init__(self, accounts: Accounts, files: Files, origins: OriginPolicy) -> None:
        self._accounts = accounts
        self._files = files
        self._origins = origins

    @staticmethod
    def upload_room(method: bytes, uri: bytes) -> str | None:
        """The room of a ``POST /api/rooms/{room}/files`` request line; None for any other request."""
        if method != b"POST":
            return None
        parts = uri.split(b"?", 1)[0].split(b"/")
        if len(parts) != 5 or parts[:3] != [b"", b"api", b"rooms"] or parts[4] != b"files":
            return None
        return unquote_to_bytes(parts[3]).decode("utf-8", "replace")

    async def admit(self, room: str, request) -> None:
        """Return if the upload may go on; raise the ApiError the route would answer otherwise."""
        apply_cors(request, self._origins)  # a refusal a browser should be able to read carries them
        principal = await self._accounts.authenticate(bearer_token(request))
        self._files.check_upload(principal, room)


class ApiResource(Resource):
    """``/api``: CORS first (preflights answered here), then the Klein routes."""

    isLeaf = True

    def __init__(self, routes: ApiRoutes, origins: OriginPolicy) -> None:
        super().__init__()
        self._klein = routes.app.resource()
        self._origins = origins

    def render(self, request):
        if apply_cors(request, self._origins):
            request.setResponseCode(204)
            return b""
        return self._klein.render(request)
