"""``/api/rooms``, ``/api/dms`` and ``/api/sessions``: rooms, their members, history and read positions, edits,
a user's rooms. Every room read asks the access rule (chatd.rooms.access) first."""

from __future__ import annotations

from klein import Klein

from chatd import errors
from chatd.chat.frames import ROOM, emoji_error, message_body
from chatd.rooms.access import READ, WRITE
from chatd.web import params
from chatd.web.api.common import (
    Routes,
    json_object,
    messages_page,
    messages_page_body,
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

    def __init__(self, auth, history, editor, access, catalog, members, direct, threads=None, reactions=None) -> None:
        super().__init__(auth)
        self._history = history
        self._editor = editor
        self._access = access  # chatd.rooms.access.RoomAccess
        self._catalog = catalog  # chatd.rooms.catalog.RoomCatalog
        self._members = members  # chatd.rooms.members.RoomMembers
        self._direct = direct  # chatd.rooms.direct.DirectRooms
        self._threads = threads  # chatd.chat.threads.Threads
        self._reactions = reactions  # chatd.chat.reactions.Reactions

    @app.route("/rooms", methods=["GET"])
    async def list_rooms(self, request):
        principal = await self.principal(request)
        return json_body(request, 200, {"rooms": await self._catalog.listed(principal.user)})

    @app.route("/rooms", methods=["POST"])
    async def create_room(self, request):
        principal = await self.principal(request)
        return json_body(request, 201, await self._catalog.create(principal, json_object(request)))

    @app.route("/rooms/<room>", methods=["GET"])
    async def get_room(self, request, room):
        principal = await self.principal(request)
        return json_body(request, 200, await self._catalog.get(principal, room_name(room)))

    @app.route("/rooms/<room>", methods=["PATCH"])
    async def change_room(self, request, room):
        principal = await self.principal(request)
        return json_body(request, 200, await self._catalog.change(principal, room_name(room), json_object(request)))

    @app.route("/rooms/<room>/members", methods=["GET"])
    async def room_members(self, request, room):
        principal = await self.principal(request)
        return json_body(request, 200, {"members": await self._members.listed(principal, room_name(room))})

    @app.route("/rooms/<room>/members", methods=["POST"])
    async def invite_member(self, request, room):
        principal = await self.principal(request)
        status, member = await self._members.invite(principal, room_name(room), json_object(request))
        return json_body(request, status, member)

    @app.route("/rooms/<room>/members/<user>", methods=["PATCH"])
    async def change_member(self, request, room, user):
        principal = await self.principal(request)
        return json_body(request, 200, await self._members.set_role(principal, room_name(room), user,
                                                                     json_object(request)))

    @app.route("/rooms/<room>/members/<user>", methods=["DELETE"])
    async def remove_member(self, request, room, user):
        principal = await self.principal(request)
        await self._members.remove(principal, room_name(room), user)
        return no_content(request)

    @app.route("/dms", methods=["POST"])
    async def open_direct(self, request):
        principal = await self.principal(request)
        status, room = await self._direct.open(principal, json_object(request))
        return json_body(request, status, room)

    @app.route("/rooms/<room>/messages", methods=["GET"])
    async def room_messages(self, request, room):
        principal = await self.principal(request)
        await self._access.require(principal.user, room_name(room), READ)
        return messages_page(request, await self._page(request, room))

    @app.route("/rooms/<room>/reads", methods=["GET"])
    async def room_reads(self, request, room):
        principal = await self.principal(request)
        await self._access.require(principal.user, room_name(room), READ)
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

    @app.route("/rooms/<room>/messages/<seq>/thread", methods=["GET"])
    async def thread(self, request, room, seq):
        principal = await self.principal(request)
        room, number = message_address(room, seq)
        await self._access.require(principal.user, room, READ)
        limit = params.page_limit(query(request, b"limit"), maximum=200)
        before = params.cursor(query(request, b"before"), "before")
        page = await self._threads.page(room, number, limit, before)
        body = b'{"root":' + message_body(page["root"]) + b"," + messages_page_body(
            [message_body(m) for m in page["messages"]], page["next_before"])[1:]
        return json_bytes(request, 200, body)

    @app.route("/rooms/<room>/messages/<seq>/reactions/<emoji>", methods=["PUT", "DELETE"])
    async def react(self, request, room, seq, emoji):
        principal = await self.principal(request)
        room, number = message_address(room, seq)
        why = emoji_error(emoji)
        if why is not None:
            raise errors.invalid(why, {"emoji": why})
        standing = await self._access.require(principal.user, room, WRITE)
        await self._reactions.apply(standing, principal.user.username, room, number, emoji, request.method == b"PUT")
        return no_content(request)

    @app.route("/sessions", methods=["GET"])
    async def sessions(self, request):
        principal = await self.principal(request)
        return json_body(request, 200, {"sessions": await self._history.sessions(principal.user)})

    @app.route("/sessions/<room>/messages", methods=["GET"])
    async def session_messages(self, request, room):
        principal = await self.principal(request)
        standing = await self._access.require(principal.user, room_name(room), READ)
        if standing.membership is None:  # the store's word, not a cached user's rooms
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
