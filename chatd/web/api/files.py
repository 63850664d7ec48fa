"""``/api/rooms/{room}/files`` and ``/api/files/{id}``: uploads (checked before their body) and downloads."""

from __future__ import annotations

from urllib.parse import quote, unquote_to_bytes

from klein import Klein

from chatd.files.sniffing import IMAGE_TYPES
from chatd.web import multipart
from chatd.web.api.common import Routes, bearer_token, render_failure
from chatd.web.cors import OriginPolicy, apply_cors
from chatd.web.download import send_file
from chatd.web.render import json_body


def content_disposition(record) -> bytes:
    """``inline`` for the images browsers show, ``attachment`` for anything else; the name in both forms."""
    kind = "inline" if record.content_type in IMAGE_TYPES else "attachment"
    plain = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in record.name)
    return f"{kind}; filename=\"{plain}\"; filename*=UTF-8''{quote(record.name, safe='')}".encode("ascii")


class FileRoutes(Routes):
    app = Klein()

    def __init__(self, auth, files) -> None:
        super().__init__(auth)
        self._files = files

    @app.route("/rooms/<room>/files", methods=["POST"])
    async def upload_file(self, request, room):
        principal = await self.principal(request)
        request.content.seek(0)
        name, chunks = multipart.file_field(request.content, request.getHeader("content-type"))
        return json_body(request, 201, await self._files.upload(principal, room, name, chunks))

    @app.route("/files/<file_id>", methods=["GET"])
    async def download_file(self, request, file_id):
        principal = await self.principal(request)
        record, reader = await self._files.open(principal, file_id)
        request.setHeader(b"Content-Type", record.content_type.encode("ascii"))
        request.setHeader(b"Content-Length", str(record.size).encode("ascii"))
        request.setHeader(b"Content-Disposition", content_disposition(record))
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        # Even shown inline, a file is never a page that runs anything.
        request.setHeader(b"Content-Security-Policy", b"default-src 'none'; sandbox")
        request.setHeader(b"Cache-Control", b"private, max-age=86400")
        await send_file(request, reader, record.size)
        return b""

    @app.handle_errors(Exception)
    def failed(self, request, failure):
        return render_failure(request, failure)


class UploadGate:
    """Who may send an upload's body: checked from its head, before the body is read (chatd.web.requests).

    The same checks, in the same order, as the upload route: the token (401, 403 when
    banned, 503 when the store is away), then the room (404 malformed, 403 not a member)
    and the user's upload quota (429). The route checks again once the body is in.
    """

    def __init__(self, auth, files, origins: OriginPolicy) -> None:
        self._auth = auth
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
        principal = await self._auth.authenticate(bearer_token(request))
        await self._files.check_upload(principal, room)
