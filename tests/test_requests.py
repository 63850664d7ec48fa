"""Unit tests for chatd.web.requests.ChatdRequest: bounded bodies, multipart never parsed into memory."""

from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyChannel

from chatd.web.requests import ChatdRequest
from tests.test_multipart import CTYPE, body


class _Unprocessed(ChatdRequest):
    processed = False

    def process(self):
        self.processed = True


def _request(max_body: int) -> _Unprocessed:
    channel = DummyChannel()
    channel.site.max_body = max_body
    return _Unprocessed(channel)


class ChatdRequestTests(SynchronousTestCase):
    def test_multipart_body_is_not_parsed_into_args(self):
        """Twisted would read an upload whole into request.args; chatd reads it itself, in pieces."""
        raw = body((b'form-data; name="file"; filename="a.bin"', b"x" * 1000))
        request = _request(10_000)
        request.requestHeaders.setRawHeaders(b"content-type", [CTYPE.encode()])
        request.requestHeaders.setRawHeaders(b"content-length", [str(len(raw)).encode()])
        request.gotLength(len(raw))
        request.handleContentChunk(raw)
        request.requestReceived(b"POST", b"/api/rooms/lobby/files", b"HTTP/1.1")
        self.assertTrue(request.processed)
        self.assertEqual(request.args, {})
        request.content.seek(0)
        self.assertEqual(request.content.read(), raw)

    def test_declared_length_over_the_limit_is_refused_at_once(self):
        request = _request(1000)
        request.gotLength(1001)
        written = request.channel.transport.written.getvalue()
        self.assertTrue(written.startswith(b"HTTP/1.1 413 "), written)
        self.assertIn(b'"code": "too_large"', written)
        request.handleContentChunk(b"y" * 1001)  # what still arrives is dropped, not stored
        request.requestReceived(b"POST", b"/api/rooms/lobby/files", b"HTTP/1.1")
        self.assertFalse(request.processed)

    def test_chunked_body_is_refused_once_past_the_limit(self):
        request = _request(1000)
        request.gotLength(None)
        request.handleContentChunk(b"z" * 600)
        self.assertEqual(request.channel.transport.written.getvalue(), b"")
        request.handleContentChunk(b"z" * 600)
        self.assertTrue(request.channel.transport.written.getvalue().startswith(b"HTTP/1.1 413 "))

    def test_within_the_limit_is_kept(self):
        request = _request(1000)
        request.gotLength(1000)
        request.handleContentChunk(b"k" * 1000)
        request.requestReceived(b"POST", b"/api/auth/login", b"HTTP/1.1")
        self.assertTrue(request.processed)
