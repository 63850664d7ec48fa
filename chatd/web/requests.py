"""The site's request class: bounded bodies, and no form parsing into memory.

Twisted keeps a request body of any size (in a temporary file past 100 KB)
and, for a ``multipart/form-data`` POST, reads it whole into memory to fill
``request.args``. chatd speaks JSON, and reads uploads itself a piece at a
time (:mod:`chatd.web.multipart`), so form parsing is off; and a body larger
than the site's ``max_body`` (``--max-upload`` plus room for the multipart
framing) is refused with 413 as soon as its length is known, or as soon as a
chunked body passes it, without being stored.
"""

from __future__ import annotations

import json

from twisted.web import server

from chatd import errors


class ChatdRequest(server.Request):
    _refused = False
    _received = 0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, parsePOSTFormSubmission=False, **kwargs)

    def gotLength(self, length) -> None:
        if length is not None and length > self._max_body():
            self._refuse()
        super().gotLength(0 if self._refused else length)  # refused: an empty in-memory body, no temp file

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._received += len(data)
        if self._received > self._max_body():
            self._refuse()
            return
        super().handleContentChunk(data)

    def requestReceived(self, command, path, version) -> None:
        if not self._refused:
            super().requestReceived(command, path, version)

    def _max_body(self) -> int:
        return getattr(self.channel.site, "max_body", 1 << 62)

    def _refuse(self) -> None:
        """Answer 413 at once and close: the rest of the body is neither read nor kept."""
        self._refused = True
        error = errors.too_large(f"The request body is larger than {self._max_body()} bytes.")
        body = json.dumps(error.body()).encode()
        head = (f"HTTP/1.1 413 Content Too Large\r\nContent-Type: application/json; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        transport = self.channel.transport
        transport.write(head + body)
        transport.loseConnection()
