"""The site's connections and requests: bounded bodies, uploads checked before they are read, deadlines, headers.

Twisted keeps a request body of any size (in a temporary file past 100 KB)
before any resource sees the request, and, for a ``multipart/form-data`` POST,
reads it whole into memory to fill ``request.args``. chatd speaks JSON and
reads uploads itself a piece at a time (:mod:`chatd.web.multipart`), so form
parsing is off, and the body is judged from the request's head, before any of
it is stored:

- a body over 64 KiB (``small_body``) is refused with 413 as soon as its length
  is known, or as soon as a chunked body passes it, except for an upload
  (``POST /api/rooms/{room}/files``), which may take ``max_body``;
- an upload is checked first (token, ban, room membership, through the site's
  ``gate``): reading the socket is paused meanwhile, so only what arrived with
  the head is held (in memory, bounded); a refusal is answered and the
  connection closed without the body being read;
- a request's head and (non-upload) body must arrive within ``request_deadline``
  seconds of its first byte, so a client trickling a byte at a time cannot keep
  a connection for ever; an authorized upload may take longer but must keep
  moving (the site's idle timeout).

Every response says ``Server: chatd`` and carries the headers of
:data:`chatd.web.render.SECURITY_HEADERS`.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web import http, server

from chatd import errors
from chatd.web.render import SECURITY_HEADERS, SERVER, raw_error

# Body bytes of an upload held in memory while its check runs: what arrived with the head, one
# read or two (the socket is paused at once). A client that gets past that is dropped.
HELD_LIMIT = 256 * 1024


def request_line(channel) -> tuple[bytes, bytes, bytes]:
    """The method, URI and version of the request whose head ``channel`` has just read.

    Twisted hands them to the request only with the whole body (``requestReceived``);
    until then ``HTTPChannel`` keeps them in these attributes (tests/test_requests.py
    checks they are there on the installed Twisted).
    """
    return channel._command, channel._path, channel._version


class ChatdChannel(http.HTTPChannel):
    """An HTTP connection with a deadline for each request's head and body (``site.request_deadline``)."""

    _log = Logger()
    _deadline = None
    _abort = None
    _began: float | None = None  # when the first request's first byte came, if before this channel had it
    _reading = False  # from a request's first byte until its body is in
    _handling = False  # from then until it is answered (pipelined bytes wait)

    def request_began(self, when: float) -> None:
        """The first request's first byte came at ``when`` (reactor seconds): its deadline counts from then.

        The connection router (chatd.web.speedups.router) holds a connection's first bytes while
        it tells a WebSocket handshake from anything else.
        """
        self._began = when

    def dataReceived(self, data: bytes) -> None:
        if data and not self._reading and not self._handling:
            self._reading = True
            delay = self.site.request_deadline
            if self._began is not None:
                delay -= self.site.reactor.seconds() - self._began
                self._began = None
            self._deadline = self.callLater(max(0.0, delay), self._too_slow)
        super().dataReceived(data)

    def allContentReceived(self) -> None:
        self._reading = False
        self._handling = True
        self.lift_deadline()
        super().allContentReceived()

    def requestDone(self, request) -> None:
        self._handling = False  # before Twisted replays what was pipelined behind it
        super().requestDone(request)

    def lineLengthExceeded(self, line: bytes) -> None:
        # Twisted closes without a word when one line of a head passes 16 KiB; say why.
        self.refuse(raw_error(errors.ApiError(431, "too_large", "The request's head is too large.")))

    def refuse(self, response: bytes) -> None:
        """Write a final ``response`` and close, leaving the rest of the request unread.

        Over TLS the close waits for the peer's close_notify, so reading resumes (what
        arrives is dropped); a connection still there after ``abortTimeout`` seconds is aborted.
        """
        self.transport.write(response)
        resume = getattr(self.transport, "resumeProducing", None)
        if resume is not None:
            resume()  # a plain TCP connection stops reading again as it closes, just below
        self.loseConnection()
        if self._abort is None:
            self._abort = self.callLater(self.abortTimeout, self.transport.abortConnection)

    def lift_deadline(self) -> None:
        """The request may take its time from here (an authorized upload): only the idle timeout applies."""
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        self._log.info("dropping a connection whose request took over {seconds} s to arrive",
                       seconds=self.site.request_deadline)
        self.timeoutConnection()

    def connectionLost(self, reason) -> None:
        self.lift_deadline()
        if self._abort is not None and self._abort.active():
            self._abort.cancel()
        super().connectionLost(reason)


class ChatdRequest(server.Request):
    """A request whose body is bounded, and for an upload, read only once the upload is authorized."""

    _log = Logger()
    _refused = False  # answered before its body was read: nothing more is done with it
    _held: list[bytes] | None = None  # body bytes that came while the gate decides (None: not waiting)
    _held_size = 0
    _received_args = None  # requestReceived's arguments, if the body was all in before the gate answered
    _gone = False
    _received = 0
    _limit = 0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, parsePOSTFormSubmission=False, **kwargs)

    def gotLength(self, length) -> None:
        site = self.channel.site
        # Kept: a refusal may come after the gate awaited the store, when the channel has already read a
        # small body whole and forgotten the request line.
        self._line = method, uri, _ = request_line(self.channel)
        room = site.gate.upload_room(method, uri) if site.gate is not None else None
        self._limit = site.max_body if room is not None else site.small_body
        if length is not None and length > self._limit:
            self._drop_expect()  # the 413 is the answer; no 100 Continue after it
            self._refuse(errors.too_large(f"The request body is larger than {self._limit} bytes."))
            return
        if room is None:
            super().gotLength(length)
            return
        # Twisted would answer "Expect: 100-continue" now; the client hears it once the upload may go on.
        expect = self._drop_expect()
        self._held = []
        self._pause()
        checked = Deferred.fromCoroutine(site.gate.admit(room, self))
        checked.addCallbacks(self._admitted, self._turned_away, callbackArgs=(length, expect))
        checked.addErrback(lambda failure: self._log.failure("checking an upload before its body", failure))

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        if self._held is not None:
            self._held.append(data)
            self._held_size += len(data)
            if self._held_size > HELD_LIMIT:
                self._refused = True
                self.channel.transport.abortConnection()
                return
            self._pause()  # the channel may have resumed reading (its own write buffer drained)
            return
        self._received += len(data)
        if self._received > self._limit:
            self._refuse(errors.too_large(f"The request body is larger than {self._limit} bytes."))
            return
        super().handleContentChunk(data)

    def requestReceived(self, command, path, version) -> None:
        if self._refused:
            return
        if self._held is not None:
            self._received_args = (command, path, version)
            return
        super().requestReceived(command, path, version)

    def write(self, data: bytes) -> None:
        if not self.startedWriting:
            self.responseHeaders.setRawHeaders(b"Server", [SERVER])
            for name, value in SECURITY_HEADERS:
                self.responseHeaders.setRawHeaders(name, [value])
        super().write(data)

    def connectionLost(self, reason) -> None:
        self._gone = True
        super().connectionLost(reason)

    # -- the upload gate ---------------------------------------------------

    def _admitted(self, _, length, expect: bool) -> None:
        if self._gone or self._refused:
            return
        held, self._held = self._held, None
        super().gotLength(length)  # Twisted's temporary file for a large body, only now
        self.channel.lift_deadline()
        if expect and not held and self._received_args is None:
            self.channel.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        for chunk in held:
            self.handleContentChunk(chunk)
        self._resume()
        if self._received_args is not None and not self._refused:
            self.requestReceived(*self._received_args)

    def _turned_away(self, failure) -> None:
        if self._gone or self._refused:
            return
        self._held = None
        refusal = errors.api_error(failure.value)
        if refusal is not None:
            self._refuse(refusal)
            return
        self._log.failure("checking an upload before its body", failure)
        self._refuse(errors.ApiError(500, "internal", "Something went wrong on our side."))

    def _drop_expect(self) -> bool:
        expect = self.requestHeaders.getRawHeaders(b"expect")
        self.requestHeaders.removeHeader(b"expect")
        return bool(expect) and expect[0].lower() == b"100-continue" and request_line(self.channel)[2] == b"HTTP/1.1"

    def _pause(self) -> None:
        pause = getattr(self.channel.transport, "pauseProducing", None)
        if pause is not None:
            pause()

    def _resume(self) -> None:
        resume = getattr(self.channel.transport, "resumeProducing", None)
        if resume is not None:
            resume()

    def _refuse(self, error: errors.ApiError) -> None:
        """Answer ``error`` at once and close: the rest of the body is neither read nor kept."""
        self._refused = True
        self._held = None
        if self.content is None:
            super().gotLength(0)  # an empty in-memory body, for whoever looks: never a temporary file
        # What the gate set for a configured origin (CORS), so a browser may read the refusal.
        cors = [(name, value) for name, values in self.responseHeaders.getAllRawHeaders() for value in values
                if name.lower().startswith(b"access-control-") or name.lower() == b"vary"]
        response = raw_error(error, cors)
        self._log_refusal(error.status, len(response))
        self.channel.refuse(response)

    def _log_refusal(self, status: int, size: int) -> None:
        """The access log line (and request count) a refused request would otherwise lack."""
        line = getattr(self, "_line", None)
        self.method, self.uri, self.clientproto = line if line is not None else request_line(self.channel)
        self.path = self.uri.split(b"?", 1)[0]
        self.code = status
        self.sentLength = size
        self.channel.site.log(self)
