"""``/api/openapi.json``: the OpenAPI 3.1 description of the REST API, shipped beside this package;
``/api/docs``: a page that shows it.

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
from chatd.web.site import STATIC_HEADERS

DOCUMENT = "openapi.json"
MAX_AGE = 3600  # seconds; the document changes only with a new chatd
# /api/docs: the page's own script and style render the document (www/js/apidocs.js); no inline code, so
# the static site's CSP applies unchanged.
DOCS_PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>chatd REST API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/css/apidocs.css"><script type="module" src="/js/apidocs.js"></script>
</head><body><main id="api-docs"><p>Loading <a href="/api/openapi.json">/api/openapi.json</a>...</p></main></body></html>
"""


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

    @app.route("/docs", methods=["GET"])
    def docs(self, request):
        for name, value in STATIC_HEADERS.items():
            request.setHeader(name, value)
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        return DOCS_PAGE

    @app.handle_errors(Exception)
    def failed(self, request, failure):
        return render_failure(request, failure)
