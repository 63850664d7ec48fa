"""``/api/openapi.json``: the OpenAPI 3.1 description of the REST API, shipped beside this package.

The document (chatd/web/openapi.json) is kept by hand and held to the server by
tests/test_openapi.py: every route the site really has, the statuses and bodies
a real chatd answers. It is read once, when the routes are built, and served
with an ETag so clients and proxies may cache it.
"""

from __future__ import annotations

import hashlib
from importlib import resources

from klein import Klein

from chatd.web.api.common import Routes, render_failure

DOCUMENT = "openapi.json"
MAX_AGE = 3600  # seconds; the document changes only with a new chatd


def description_bytes() -> bytes:
    """The packaged document, as shipped (a wheel's package data, or the source tree when editable)."""
    return resources.files("chatd.web").joinpath(DOCUMENT).read_bytes()


class DescriptionRoutes(Routes):
    """No token needed: the description tells how to get one."""

    app = Klein()

    def __init__(self, document: bytes | None = None) -> None:
        super().__init__(None)
        self._document = description_bytes() if document is None else document
        self._etag = b'"' + hashlib.sha256(self._document).hexdigest()[:32].encode("ascii") + b'"'

    @app.route("/openapi.json", methods=["GET"])
    def openapi(self, request):
        request.setHeader(b"Cache-Control", b"public, max-age=%d" % MAX_AGE)
        request.setHeader(b"ETag", self._etag)
        wanted = request.getHeader(b"if-none-match")
        if wanted is not None and self._etag in (tag.strip() for tag in wanted.split(b",")):
            request.setResponseCode(304)
            return b""
        request.setHeader(b"Content-Type", b"application/json; charset=utf-8")
        return self._document

    @app.handle_errors(Exception)
    def failed(self, request, failure):
        return render_failure(request, failure)
