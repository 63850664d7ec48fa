"""``/api/search``: messages matching words, in the rooms the caller may read (chatd.chat.search decides)."""

from __future__ import annotations

from klein import Klein

from chatd.web.api.common import Routes, query, render_failure
from chatd.web.render import json_body


class SearchRoutes(Routes):
    app = Klein()

    def __init__(self, auth, search) -> None:
        super().__init__(auth)
        self._search = search  # chatd.chat.search.Search

    @app.route("/search", methods=["GET"])
    async def search(self, request):
        principal = await self.principal(request)
        found = await self._search.search(principal.user, query(request, b"q"), query(request, b"room"),
                                          query(request, b"from"), query(request, b"limit"),
                                          query(request, b"before"))
        return json_body(request, 200, found)

    @app.handle_errors(Exception)
    def failed(self, request, failure):
        return render_failure(request, failure)
