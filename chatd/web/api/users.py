"""``/api/users``: listing, reading, changing and deleting accounts, and bans."""

from __future__ import annotations

from klein import Klein

from chatd.accounts import validation
from chatd.web import params
from chatd.web.api.common import (
    Routes,
    client_address,
    json_object,
    query,
    render_failure,
)
from chatd.web.render import json_body, no_content


class UserRoutes(Routes):
    app = Klein()

    def __init__(self, auth, users, moderation) -> None:
        super().__init__(auth)
        self._users = users
        self._moderation = moderation

    @app.route("/users", methods=["GET"])
    async def list_users(self, request):
        await self.principal(request)
        limit = params.page_limit(query(request, b"limit"))
        online = params.flag(query(request, b"online"), "online")
        return json_body(request, 200, await self._users.list_users(limit, query(request, b"after"), online))

    @app.route("/users/<user_id>", methods=["GET"])
    async def get_user(self, request, user_id):
        await self.principal(request)
        return json_body(request, 200, await self._users.get_user(user_id))

    @app.route("/users/<user_id>", methods=["PATCH", "PUT"])
    async def update_user(self, request, user_id):
        principal = await self.principal(request)
        changes = json_object(request)
        return json_body(request, 200, await self._users.update_user(principal, user_id, changes, client_address(request)))

    @app.route("/users/<user_id>", methods=["DELETE"])
    async def delete_user(self, request, user_id):
        await self._users.delete_user(await self.principal(request), user_id)
        return no_content(request)

    @app.route("/users/<user_id>/ban", methods=["POST"])
    async def ban_user(self, request, user_id):
        principal = await self.principal(request)
        await self._moderation.ban(principal, user_id, validation.ban(json_object(request, empty_ok=True)))
        return no_content(request)

    @app.route("/users/<user_id>/ban", methods=["DELETE"])
    async def unban_user(self, request, user_id):
        await self._moderation.unban(await self.principal(request), user_id)
        return no_content(request)

    @app.handle_errors(Exception)
    def failed(self, request, failure):
        return render_failure(request, failure)
