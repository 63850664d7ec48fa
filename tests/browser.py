"""Driving Debian's Chromium with Python Playwright against a chatd running in the test's reactor.

Playwright's sync API blocks its thread, so each scenario runs in a worker
thread (``in_browser``) while the reactor thread keeps serving; a scenario that
must act on the server (a restart) calls back into the reactor with
``blockingCallFromThread``.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
import zlib
from pathlib import Path

from twisted.internet import defer, reactor, threads

from tests.harness import require

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]
WAIT_MS = 15_000
PASSWORD = "correct horse battery"


def require_browser() -> None:
    require(Path(CHROMIUM).exists() or shutil.which("chromium") is not None, "Chromium (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        require(False, "Python Playwright (pip install -e '.[test]')")


def in_browser(scenario, *args):
    """Run ``scenario(browser, *args)`` in a worker thread with a fresh headless Chromium; a Deferred."""

    def run():
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            try:
                return scenario(browser, *args)
            finally:
                browser.close()

    return threads.deferToThread(run)


def on_reactor(function, *args):
    """From a scenario's thread: run the coroutine function ``function(*args)`` in the reactor (where the
    server and the test's own sockets live) and wait for its result."""
    return threads.blockingCallFromThread(reactor, lambda: defer.ensureDeferred(function(*args)))


def tiny_png(width: int = 24, height: int = 16) -> bytes:
    """A real PNG (red), so the browser decodes it and the preview has a size."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def screenshot(page, name: str) -> None:
    """Save a screenshot under $CHATD_SCREENSHOTS (how docs/screenshots/ is made); nothing otherwise."""
    directory = os.environ.get("CHATD_SCREENSHOTS")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(directory) / f"{name}.png"))


class ChatPage:
    """One browser page on the chat, with the steps a user takes."""

    def __init__(self, browser, url: str, viewport=None, init_script: str | None = None) -> None:
        self.context = browser.new_context(viewport=viewport or {"width": 1200, "height": 800})
        if init_script:
            self.context.add_init_script(init_script)  # runs in every document before the page's scripts
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.console_errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", lambda message: message.type == "error" and self.console_errors.append(
            f"{message.text} ({message.location.get('url')})"))
        # Every frame the page's sockets sent and received, decoded: what the server saw of this page.
        self.sent: list[dict] = []
        self.received: list[dict] = []
        self.page.on("websocket", self._record)
        self.page.set_default_timeout(WAIT_MS)
        self.page.goto(url)

    def _record(self, socket) -> None:
        socket.on("framesent", lambda payload: self.sent.append(_decoded(payload)))
        socket.on("framereceived", lambda payload: self.received.append(_decoded(payload)))

    def sent_of(self, kind: str) -> list[dict]:
        """The frames of type ``kind`` this page has sent so far."""
        return [frame for frame in self.sent if frame.get("type") == kind]

    def register(self, username: str, email: str | None = None) -> None:
        page = self.page
        page.click("#auth-switch")
        page.fill("#username", username)
        page.fill("#email", email or f"{username.lower()}@example.com")
        page.fill("#password", PASSWORD)
        page.click("#auth-submit")

    def signed_in(self) -> None:
        self.page.wait_for_selector("#chat:not([hidden])")
        self.wait_connected()

    def wait_until(self, script: str, arg=None, timeout: int = WAIT_MS) -> None:
        """Poll ``script`` (a JS expression or function of ``arg``) until it is truthy.

        Not ``page.wait_for_function``: that compiles its predicate with eval inside
        the page, which the page's CSP (no 'unsafe-eval') refuses, as it should.
        ``page.evaluate`` runs from the DevTools side, outside the page's policy.
        """
        deadline = time.monotonic() + timeout / 1000
        while not self.page.evaluate(script, arg):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} ms waiting for {script}")
            self.page.wait_for_timeout(50)

    def wait_connected(self) -> None:
        self.page.wait_for_selector("#connection[data-state=online]")

    def join(self, room: str) -> None:
        self.page.fill("#join-room", room)
        self.page.press("#join-room", "Enter")
        self.page.wait_for_selector(f"#room-title:text-is('{room}')")
        self.page.wait_for_selector("#room[data-joined=true]")  # the server has stored the membership

    def send(self, text: str) -> None:
        self.page.fill("#text", text)
        self.page.press("#text", "Enter")

    def message(self, text: str):
        """The locator of the message items whose text is exactly ``text``."""
        return self.page.locator("#message-list .message").filter(
            has=self.page.locator(".text", has_text=text))

    def wait_message(self, text: str) -> None:
        self.message(text).first.wait_for()

    def act(self, text: str, label: str) -> None:
        """Click the action ``label`` (Edit, Delete, Ban …) of the message ``text``: as a user does, by
        pointing at the message first (its actions show on hover or focus)."""
        message = self.message(text)
        message.hover()
        message.locator("button", has_text=label).click()

    def texts(self) -> list[str]:
        return self.page.locator("#message-list .message .text").all_inner_texts()


def _decoded(payload) -> dict:
    try:
        return json.loads(payload)
    except (TypeError, ValueError):
        return {"type": None, "raw": payload}


PHONE = {"width": 390, "height": 800}  # a phone's viewport, for the narrow layout


def signed_up(browser, url: str, name: str, viewport=None, init_script: str | None = None) -> ChatPage:
    """A page of a newly registered ``name``, connected."""
    page = ChatPage(browser, url, viewport=viewport, init_script=init_script)
    page.register(name)
    page.signed_in()
    return page


def two_in_lobby(browser, url: str, init_script: str | None = None) -> tuple[ChatPage, ChatPage]:
    """alice (the first user: an admin) and bob, registered, connected and joined to "lobby"."""
    alice, bob = ChatPage(browser, url, init_script=init_script), ChatPage(browser, url, init_script=init_script)
    screenshot(alice.page, "login")
    alice.register("alice")
    alice.signed_in()
    bob.register("bob")
    bob.signed_in()
    alice.join("lobby")
    bob.join("lobby")
    return alice, bob
