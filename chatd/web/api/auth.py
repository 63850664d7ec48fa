"""``/api/auth``: register, login, refresh, logout."""

from __future__ import annotations

from klein import Klein

from chatd.web.api.common import Routes, client_address, json_object, render_failure
from chatd.web.render import json_body, no_content


class AuthRoutes(Routes):
    app = Klein()

    @app.route("/auth/register", methods=["POST"])
    async def register(self, request):
        address = client_address(request)
        self._auth.limit_address(address)
        return json_body(request, 201, await self._auth.register(json_object(request), address))

    @app.route("/auth/login", methods=["POST"])
    async def login(self, request):
        address = client_address(request)
        self._auth.limit_address(address)
        return json_body(request, 200, await self._auth.login(json_object(request), address))

    @app.route("/auth/refresh", methods=["POST"])
    async def refresh(self, request):
        self._auth.limit_address(client_address(request))
        return json_body(request, 200, self._auth.refresh(await self.principal(request)))

    @app.route("/auth/logout", methods=["POST"])
    async def logout(self, request):
        await self._auth.logout(await self.principal(request))
        return no_content(request)

    @app.handle_errors(Exception)
    def failed(self, request, failure):
        return render_failure(request, failure)
