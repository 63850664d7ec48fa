"""``/api/rooms`` and ``/api/sessions``: rooms, their history and read positions, edits, a user's rooms."""

from __future__ import annotations

from klein import Klein

from chatd import errors
from chatd.chat.frames import ROOM
from chatd.web import params
from chatd.web.api.common import (
    Routes,
    json_object,
    messages_page,
    query,
    render_failure,
    room_name,
)
from chatd.web.render import json_body, json_bytes, no_content


def message_address(room: str, seq: str) -> tuple[str, int]:
    """(room, seq) of a message path, or 404: a malformed address names no message."""
    if not ROOM.fullmatch(room) or not seq.isascii() or not seq.isdigit() or len(seq) > 18 or int(seq) < 1:
        raise errors.not_found("No such message.")
    return room, int(seq)


class RoomRoutes(Routes):
    app = Klein()

    def __init__(self, auth, history, editor) -> None:
        super().__init__(auth)
        self._history = history
        self._editor = editor

    @app.route("/rooms", methods=["GET"])
    async def list_rooms(self, request):
        await self.principal(request)
        return json_body(request, 200, {"rooms": await self._history.rooms()})

    @app.route("/rooms/<room>/messages", methods=["GET"])
    async def room_messages(self, request, room):
        await self.principal(request)
        return messages_page(request, await self._page(request, room))

    @app.route("/rooms/<room>/reads", methods=["GET"])
    async def room_reads(self, request, room):
        await self.principal(request)
        return json_body(request, 200, {"reads": await self._history.reads(room_name(room))})

    @app.route("/rooms/<room>/messages/<seq>", methods=["PATCH"])
    async def edit_message(self, request, room, seq):
        principal = await self.principal(request)
        room, number = message_address(room, seq)
        text = params.message_edit(json_object(request))
        return json_bytes(request, 200, await self._editor.edit(principal, room, number, text))

    @app.route("/rooms/<room>/messages/<seq>", methods=["DELETE"])
    async def delete_message(self, request, room, seq):
        principal = await self.principal(request)
        await self._editor.delete(principal, *message_address(room, seq))
        return no_content(request)

    @app.route("/sessions", methods=["GET"])
    async def sessions(self, request):
        principal = await self.principal(request)
        return json_body(request, 200, {"sessions": await self._history.sessions(principal.user)})

    @app.route("/sessions/<room>/messages", methods=["GET"])
    async def session_messages(self, request, room):
        principal = await self.principal(request)
        if room not in principal.user.rooms:
            raise errors.not_found("You are not a member of that room.")
        return messages_page(request, await self._page(request, room))

    async def _page(self, request, room: str) -> dict:
        room = room_name(room)
        limit = params.page_limit(query(request, b"limit"), maximum=200)
        before = params.cursor(query(request, b"before"), "before")
        return await self._history.page(room, limit, before)

    @app.handle_errors(Exception)
    def failed(self, request, failure):
        return render_failure(request, failure)
