"""The static page (``--static``): only the published files, each with the page's security headers.

Unit tests traverse and render ``StaticFiles`` with Twisted's ``DummyRequest``
(which, unlike an in-memory HTTP channel, runs static.File's pull producer
without a reactor); the end-to-end test asks a running chatd over a loopback socket.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path
from urllib.parse import unquote_to_bytes

from twisted.internet import threads
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.resource import getChildForRequest
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from chatd.web.site import CONTENT_SECURITY_POLICY, StaticFiles
from tests.harness import start_server

SECRET = b"jwt-secret-do-not-serve"


def static_tree(test) -> tuple[Path, Path]:
    """A static dir beside a secret, with every kind of file a careless deployment has; (static, outside)."""
    base = Path(tempfile.mkdtemp(prefix="chatd-static-"))
    test.addCleanup(shutil.rmtree, base, True)
    www, outside = base / "www", base / "outside"
    (www / "js").mkdir(parents=True)
    (www / "empty").mkdir()
    (www / ".git").mkdir()
    outside.mkdir()
    (www / "index.html").write_bytes(b"<!doctype html><title>chat</title>")
    (www / "js" / "app.js").write_bytes(b"export const x = 1;\n")
    (www / ".env").write_bytes(b"CHATD_JWT_SECRET=" + SECRET)
    (www / ".git" / "config").write_bytes(b"[remote]\n\turl = " + SECRET)
    (outside / "jwt-secret").write_bytes(SECRET)
    (www / "secret.txt").symlink_to(outside / "jwt-secret")
    (www / "elsewhere").symlink_to(outside, target_is_directory=True)
    (www / "app-link.js").symlink_to(www / "js" / "app.js")  # inside: allowed
    (www / "scripts").symlink_to(Path("js"), target_is_directory=True)  # relative, inside: allowed
    return www, outside


class StaticFilesTests(SynchronousTestCase):
    """``StaticFiles`` refuses hidden and outside files exactly as missing ones, and hardens every answer."""

    def setUp(self):
        self.www, self.outside = static_tree(self)
        self.root = StaticFiles(str(self.www))

    def get(self, path: str, root=None):
        """GET ``path`` as the Site would route it (segments split, then percent-decoded); (request, body)."""
        request = DummyRequest([unquote_to_bytes(segment) for segment in path.encode().split(b"/")[1:]])
        resource = getChildForRequest(root or self.root, request)
        result = resource.render(request)
        if result is not NOT_DONE_YET:
            request.write(result)
            request.finish()
        request.code = request.responseCode or 200
        request.headers = request.responseHeaders
        return request, b"".join(request.written)

    def assert_not_served(self, path: str) -> None:
        response, body = self.get(path)
        _, missing = self.get("/no-such-file")
        self.assertEqual(response.code, 404, path)
        self.assertEqual(body, missing, path)  # indistinguishable from a missing file
        self.assertNotIn(SECRET, body)

    def test_page_and_scripts_are_served_with_security_headers(self):
        """The index and a script are 200 with the CSP (no inline script), nosniff and no framing."""
        for path, content in (("/", b"<!doctype html><title>chat</title>"), ("/js/app.js", b"export const x = 1;\n")):
            response, body = self.get(path)
            self.assertEqual((response.code, body), (200, content), path)
            headers = response.headers
            self.assertEqual(headers.getRawHeaders("content-security-policy"), [CONTENT_SECURITY_POLICY])
            self.assertEqual(headers.getRawHeaders("x-content-type-options"), ["nosniff"])
            self.assertEqual(headers.getRawHeaders("x-frame-options"), ["DENY"])
        self.assertIn("script-src 'self';", CONTENT_SECURITY_POLICY)
        self.assertIn("frame-ancestors 'none'", CONTENT_SECURITY_POLICY)
        self.assertNotIn("unsafe-inline", CONTENT_SECURITY_POLICY)

    def test_dotfiles_are_not_served(self):
        """``/.env``, ``/.git/config`` and their percent-encoded forms are 404, like a missing file."""
        for path in ("/.env", "/.git/config", "/.git/", "/%2eenv", "/%2Egit/config", "/js/../.env"):
            self.assert_not_served(path)

    def test_symlinks_out_of_the_static_dir_are_not_served(self):
        """A symlink to a secret outside the static dir, or into an outside directory, is 404."""
        for path in ("/secret.txt", "/elsewhere/jwt-secret", "/elsewhere/"):
            self.assert_not_served(path)

    def test_symlinks_inside_the_static_dir_are_served(self):
        """A symlink whose target stays inside the static dir serves its target."""
        for path in ("/app-link.js", "/scripts/app.js"):
            response, body = self.get(path)
            self.assertEqual((response.code, body), (200, b"export const x = 1;\n"), path)

    def test_directory_without_index_is_404_with_headers(self):
        """A directory without an index is 404 (not a listing), and a 404 carries the page's headers too."""
        response, body = self.get("/empty/")
        self.assertEqual(response.code, 404)
        self.assertNotIn(b"Directory listing", body)
        self.assertEqual(response.headers.getRawHeaders("x-frame-options"), ["DENY"])
        self.assertEqual(response.headers.getRawHeaders("content-security-policy"), [CONTENT_SECURITY_POLICY])

    def test_a_static_root_given_through_a_symlink_still_serves(self):
        """``--static`` may itself be a symlink: its files are compared with its real path."""
        link = self.outside / "www-link"
        link.symlink_to(self.www, target_is_directory=True)
        root = StaticFiles(str(link))
        self.assertEqual(self.get("/js/app.js", root)[0].code, 200)
        self.assertEqual(self.get("/secret.txt", root)[0].code, 404)


def raw_get(port: int, target: bytes) -> tuple[bytes, bytes]:
    """One HTTP/1.0 request with the target exactly as given (no client-side normalisation); (head, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(b"GET " + target + b" HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        data = b""
        for _ in range(1000):  # bounded: HTTP/1.0, the server closes when done
            chunk = connection.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


class StaticSiteEndToEndTests(TestCase):
    """The running chatd's site, over a real socket, with ``--static`` on a careless directory."""

    timeout = 60

    async def test_hidden_and_outside_files_are_404_through_the_site(self):
        """Dotfiles and symlinks out of ``--static`` are 404 from the running server; the page is served
        with its security headers."""
        www, _ = static_tree(self)
        server = await start_server(self, static=str(www))
        http = server.client()
        page = await http.request("GET", "/")
        self.assertEqual(page.status, 200)
        self.assertEqual(page.header("content-security-policy"), CONTENT_SECURITY_POLICY)
        self.assertEqual(page.header("x-content-type-options"), "nosniff")
        self.assertEqual(page.header("x-frame-options"), "DENY")
        for path in ("/.env", "/.git/config", "/secret.txt", "/elsewhere/jwt-secret"):
            response = await http.request("GET", path)
            self.assertEqual(response.status, 404, path)
            self.assertNotIn(SECRET, response.body)
        for target in (b"/../outside/jwt-secret", b"/js/../.env", b"/%2e%2e/outside/jwt-secret", b"/elsewhere%2fjwt-secret"):
            head, body = await threads.deferToThread(raw_get, server.port, target)
            self.assertTrue(head.startswith(b"HTTP/1.0 404") or head.startswith(b"HTTP/1.1 404"), (target, head))
            self.assertNotIn(SECRET, body)
        self.assertEqual((await http.request("GET", "/app-link.js")).status, 200)
        self.assertTrue(os.path.islink(www / "secret.txt"))  # the test really had a symlink to refuse
