"""File sharing end to end: real multipart uploads through the running service, downloads, permissions."""

from __future__ import annotations

import os

from twisted.internet import protocol, reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.trial.unittest import TestCase

from tests.harness import start_server
from tests.test_multipart import CTYPE, body
from tests.wsclient import joined

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(3000)
LIMIT = 1024 * 1024  # --max-upload for these tests


def upload_body(name: str, data: bytes, claimed_type: bytes = b"application/octet-stream") -> bytes:
    raw = body((f'form-data; name="file"; filename="{name}"'.encode(), data))
    return raw.replace(b"Content-Type: application/octet-stream", b"Content-Type: " + claimed_type, 1)


class _RawRequest(protocol.Protocol):
    """Writes bytes as given; collects the response until the server closes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.response = b""
        self.done = Deferred()

    def connectionMade(self):
        self.transport.write(self.data)

    def dataReceived(self, data):
        self.response += data

    def connectionLost(self, reason):
        self.done.callback(self.response)


class FileTests(TestCase):
    timeout = 60

    async def setUp(self):
        self.server = await start_server(self, max_upload=LIMIT)
        self.http = self.server.client()
        self.root = await self.http.register("root")
        self.alice = await self.http.register("alice")
        self.bob = await self.http.register("bob")
        self.mallory = await self.http.register("mallory")  # never joins
        self.a = await joined(self.server.url, self.alice["token"], test=self)
        self.b = await joined(self.server.url, self.bob["token"], test=self)

    async def _upload(self, session, name, data, claimed=b"application/octet-stream", room="lobby"):
        return await self.http.request("POST", f"/api/rooms/{room}/files", raw=upload_body(name, data, claimed),
                                       token=session["token"], content_type=CTYPE)

    async def _download(self, session, url):
        return await self.http.request("GET", url, token=session["token"])

    async def test_small_image_round_trip_and_file_message(self):
        """201 with the file; the room gets a file message in seq order; members download it inline."""
        self.a.send({"type": "message", "room": "lobby", "text": "before"})
        before = (await self.a.next("ack"))["seq"]
        response = await self._upload(self.alice, "cat.png", PNG, claimed=b"text/html")
        self.assertEqual(response.status, 201, response.body)
        file = response.json()["file"]
        self.assertEqual((file["name"], file["size"], file["content_type"]), ("cat.png", len(PNG), "image/png"))
        self.assertEqual(file["url"], f"/api/files/{file['id']}")
        message = await self.b.next("message")
        while message.get("text") == "before":
            message = await self.b.next("message")
        self.assertEqual((message["seq"], message["user"], message["file"]), (before + 1, "alice", file))
        download = await self._download(self.bob, file["url"])
        self.assertEqual(download.status, 200)
        self.assertEqual(download.body, PNG)
        self.assertEqual(download.header("content-type"), "image/png")
        # Twisted's HTTP client hides Content-Length; read the raw response for it.
        raw = _RawRequest((f"GET {file['url']} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                           f"Authorization: Bearer {self.bob['token']}\r\n\r\n").encode())
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.server.port), raw)
        head, _, raw_body = (await raw.done.addTimeout(10, reactor)).partition(b"\r\n\r\n")
        self.assertIn(f"content-length: {len(PNG)}".encode(), head.lower())
        self.assertEqual(raw_body, PNG)
        self.assertTrue(download.header("content-disposition").startswith('inline; filename="cat.png"'))
        self.assertEqual(download.header("x-content-type-options"), "nosniff")
        history = await self.http.request("GET", "/api/rooms/lobby/messages", token=self.bob["token"])
        self.assertEqual(history.json()["messages"][-1]["file"], file)

    async def test_large_file_is_byte_exact(self):
        """Just under the limit, spanning several store chunks, comes back byte for byte."""
        data = os.urandom(LIMIT - 10)
        response = await self._upload(self.alice, "big.bin", data)
        self.assertEqual(response.status, 201, response.body[:300])
        file = response.json()["file"]
        self.assertEqual((file["size"], file["content_type"]), (len(data), "application/octet-stream"))
        download = await self._download(self.bob, file["url"])
        self.assertEqual(download.body, data)
        self.assertTrue(download.header("content-disposition").startswith("attachment;"))

    async def test_over_the_limit_is_413_and_nothing_is_posted(self):
        """A file past --max-upload is 413 (within the body limit or past it); no message, no file."""
        for size in (LIMIT + 1, LIMIT + 200 * 1024):
            with self.subTest(size=size):
                response = await self._upload(self.alice, "huge.bin", b"x" * size)
                self.assertEqual((response.status, response.code), (413, "too_large"))
        await self.b.none("message")

    async def test_chunked_body_over_the_limit_is_cut_off(self):
        """A chunked upload (no Content-Length) is refused with 413 as soon as it passes the limit."""
        chunk = b"y" * 65536
        head = (f"POST /api/rooms/lobby/files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {self.alice['token']}\r\n"
                f"Content-Type: {CTYPE}\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(LIMIT // len(chunk) + 4))
        raw = _RawRequest(head + chunks)
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.server.port), raw)
        response = await raw.done.addTimeout(10, reactor)
        self.assertTrue(response.startswith(b"HTTP/1.1 413"), response[:200])
        self.assertIn(b'"too_large"', response)

    async def test_hostile_names_and_spoofed_types(self):
        """Paths are cut to the base name; HTML stays text, served as an attachment, never sniffed."""
        response = await self._upload(self.alice, "../../evil/<b>hi</b>.html", b"<script>alert(1)</script>",
                                      claimed=b"image/png")
        file = response.json()["file"]
        self.assertEqual(file["name"], "b>.html")
        self.assertNotIn("..", file["name"])
        self.assertEqual(file["content_type"], "text/plain; charset=utf-8")
        download = await self._download(self.alice, file["url"])
        self.assertTrue(download.header("content-disposition").startswith("attachment;"))
        self.assertEqual(download.header("content-type"), "text/plain; charset=utf-8")
        self.assertIn("sandbox", download.header("content-security-policy"))

    async def test_only_members(self):
        """A non-member cannot upload to the room (403) nor download its files (403)."""
        response = await self._upload(self.mallory, "x.txt", b"hello")
        self.assertEqual((response.status, response.code), (403, "forbidden"))
        file = (await self._upload(self.alice, "x.txt", b"hello")).json()["file"]
        download = await self._download(self.mallory, file["url"])
        self.assertEqual((download.status, download.code), (403, "forbidden"))
        missing = await self._download(self.alice, "/api/files/ffffffffffffffffffffffff")
        self.assertEqual(missing.status, 404)
        self.assertEqual((await self._download(self.alice, "/api/files/nonsense")).status, 404)

    async def test_bad_uploads(self):
        """No file field is 400; a JSON body is 415; no token is 401 before anything is read."""
        no_file = body((b'form-data; name="text"', b"hi"))
        response = await self.http.request("POST", "/api/rooms/lobby/files", raw=no_file, token=self.alice["token"],
                                           content_type=CTYPE)
        self.assertEqual((response.status, response.json()["error"]["fields"]), (400, {"file": "required"}))
        response = await self.http.request("POST", "/api/rooms/lobby/files", {"file": "x"}, token=self.alice["token"])
        self.assertEqual(response.status, 415)
        response = await self.http.request("POST", "/api/rooms/lobby/files", raw=upload_body("a", b"a"), content_type=CTYPE)
        self.assertEqual(response.status, 401)

    async def test_deleting_a_file_message_removes_the_file(self):
        """File messages cannot be edited (400); deleting one leaves a tombstone and removes the file."""
        file = (await self._upload(self.alice, "gone.txt", b"bye")).json()["file"]
        message = await self.b.next("message")
        path = f"/api/rooms/lobby/messages/{message['seq']}"
        edit = await self.http.request("PATCH", path, {"text": "x"}, token=self.alice["token"])
        self.assertEqual(edit.status, 400)
        deleted = await self.http.request("DELETE", path, token=self.alice["token"])
        self.assertEqual(deleted.status, 204)
        self.assertEqual((await self._download(self.alice, file["url"])).status, 404)
