"""``/api``: CORS first (preflights answered here), then the group of routes the path belongs to."""

from __future__ import annotations

from twisted.web.resource import Resource

from chatd import errors
from chatd.web.api.auth import AuthRoutes
from chatd.web.api.description import DescriptionRoutes
from chatd.web.api.files import FileRoutes
from chatd.web.api.rooms import RoomRoutes
from chatd.web.api.search import SearchRoutes
from chatd.web.api.users import UserRoutes
from chatd.web.cors import OriginPolicy, apply_cors
from chatd.web.render import error_body


class ApiResource(Resource):
    """Hands each request to the Klein routes of its resource (``/api/<resource>/...``)."""

    isLeaf = True

    def __init__(self, auth: AuthRoutes, users: UserRoutes, rooms: RoomRoutes, files: FileRoutes,
                 origins: OriginPolicy, search: SearchRoutes | None = None,
                 description: DescriptionRoutes | None = None) -> None:
        super().__init__()
        auth_, users_, rooms_, files_ = (group.app.resource() for group in (auth, users, rooms, files))
        self._groups = {b"auth": auth_, b"users": users_, b"rooms": rooms_, b"dms": rooms_, b"sessions": rooms_, b"files": files_}
        self._groups[b"openapi.json"] = self._groups[b"docs"] = (description or DescriptionRoutes()).app.resource()
        self._uploads = files_
        if search is not None:
            self._groups[b"search"] = search.app.resource()
        self._origins = origins

    def render(self, request):
        if apply_cors(request, self._origins):
            request.setResponseCode(204)
            return b""
        group = self.group_for(request.postpath)
        if group is None:
            return error_body(request, errors.not_found("No such route."))
        return group.render(request)

    def group_for(self, segments: list[bytes]):
        """The Klein resource that answers a path below ``/api`` (its segments), or None."""
        if segments[2:3] == [b"files"] and segments[:1] == [b"rooms"]:
            return self._uploads  # /api/rooms/{room}/files
        return self._groups.get(segments[0] if segments else b"")

    def groups(self) -> list:
        """Every Klein resource this dispatches to, once each (tests/test_openapi.py walks their routes)."""
        return list({id(group): group for group in self._groups.values()}.values())
