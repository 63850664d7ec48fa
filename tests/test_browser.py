"""The chat page in a real browser (Debian's Chromium through Playwright) against the running service."""

from __future__ import annotations

from twisted.internet import defer, reactor, threads
from twisted.trial.unittest import TestCase

from chatd.storage.embedded import free_loopback_port
from tests.browser import (
    ChatPage,
    in_browser,
    require_browser,
    screenshot,
    tiny_png,
    two_in_lobby,
)
from tests.harness import Server, start_server

XSS_TEXTS = ['<img src=x onerror="window.__xss = 1">', "<script>window.__xss = 2</script>"]


class BrowserTests(TestCase):
    timeout = 180

    async def setUp(self):
        require_browser()
        self.port = free_loopback_port()  # fixed, so a restarted chatd is where the page reconnects
        self.server = await start_server(self, listen=[f"tcp:{self.port}:interface=127.0.0.1"])

    def _two_in_lobby(self, browser):
        return two_in_lobby(browser, self.server.url)

    async def test_two_users_chat_both_ways_with_typing_and_presence(self):
        """Two users chat both ways: a message shows "sending…" then "sent" and counts as one's own by id,
        the other sees typing, "seen by" and presence (a closed tab goes offline and leaves the member list)."""
        def scenario(browser):
            alice, bob = self._two_in_lobby(browser)
            alice.page.wait_for_selector("#members li[data-user=bob][data-online=true]")
            alice.send("hello bob")
            bob.wait_message("hello bob")
            alice.message("hello bob").locator(".state.sent").wait_for()  # pending → sent
            assert alice.message("hello bob").get_attribute("class").split().count("own") == 1
            assert "own" not in bob.message("hello bob").get_attribute("class").split()
            bob.page.type("#text", "hi al")
            alice.page.wait_for_selector("#typing:text-is('bob is typing…')")
            bob.page.press("#text", "Enter")
            alice.wait_message("hi al")
            assert alice.texts() == ["hello bob", "hi al"] and bob.texts() == ["hello bob", "hi al"]
            alice.page.wait_for_selector(".seen:text-is('Seen by bob')")  # bob read alice's message
            screenshot(alice.page, "chat-desktop")
            bob.context.close()  # bob's only socket: he goes offline
            alice.page.wait_for_selector(".notice:text-is('bob went offline')")
            alice.page.wait_for_selector("#members li[data-user=bob][data-online=false]")  # a member still
            assert not alice.errors and not bob.errors, alice.errors + bob.errors

        await in_browser(scenario)

    async def test_hostile_text_is_shown_as_text(self):
        """Markup and script in a message are shown as text and never run; a hostile username is refused at
        registration and the refusal is shown as text too."""
        def scenario(browser):
            alice, bob = self._two_in_lobby(browser)
            for text in XSS_TEXTS:
                alice.send(text)
                bob.wait_message(text)
            assert bob.texts() == XSS_TEXTS
            for page in (alice.page, bob.page):
                assert page.evaluate("window.__xss") is None
                assert page.locator("#message-list img").count() == 0
            # A hostile username never gets that far, and the refusal itself is shown as text.
            mallory = ChatPage(browser, self.server.url)
            mallory.register("<img src=x onerror=window.__xss=3>")
            mallory.page.wait_for_selector("#error-username:has-text('letters')")
            assert mallory.page.evaluate("window.__xss") is None

        await in_browser(scenario)

    async def test_page_reconnects_after_a_restart_and_shows_each_message_once(self):
        """After chatd restarts, both pages reconnect by themselves, messages sent since arrive, and every
        message shows exactly once, in order."""
        def restart():
            return threads.blockingCallFromThread(reactor, lambda: defer.ensureDeferred(self._restart()))

        def scenario(browser):
            alice, bob = self._two_in_lobby(browser)
            alice.send("before the restart")
            bob.wait_message("before the restart")
            restart()
            bob.wait_connected()
            for n in range(3):
                bob.send(f"after {n}")
            alice.wait_connected()
            for n in range(3):
                alice.wait_message(f"after {n}")
            alice.page.wait_for_timeout(500)  # anything duplicated would have arrived by now
            assert alice.texts() == ["before the restart", "after 0", "after 1", "after 2"], alice.texts()
            assert bob.texts() == alice.texts(), bob.texts()

        await in_browser(scenario)

    async def _restart(self) -> None:
        await self.server.stop()
        self.server = Server(self.server.config)
        await self.server.start()
        self.addCleanup(lambda: defer.ensureDeferred(self.server.stop()))

    async def test_an_uploaded_image_previews_in_the_other_page(self):
        """An image uploaded in one page shows as a decoded preview (from a blob: URL) in the other."""
        png = tiny_png()

        def scenario(browser):
            alice, bob = self._two_in_lobby(browser)
            alice.page.set_input_files("#file-input", files=[{"name": "red.png", "mimeType": "image/png", "buffer": png}])
            # Re-queried each time: the list is redrawn as frames arrive.
            bob.wait_until("""() => [...document.querySelectorAll("#message-list .file img[alt='red.png']")]
                .some((img) => img.complete && img.naturalWidth === 24 && img.src.startsWith('blob:'))""")

        await in_browser(scenario)

    async def test_phone_width_has_no_horizontal_scroll(self):
        """At phone width (375 px), with the rooms list slid in and out and a very long word sent, the page
        never scrolls sideways."""
        def scenario(browser):
            phone = ChatPage(browser, self.server.url, viewport={"width": 375, "height": 667})
            screenshot(phone.page, "login-phone")
            phone.register("carol")
            phone.signed_in()
            phone.page.click("#rooms-toggle")
            phone.join("lobby")
            phone.send("a-very-long-word-" * 20)
            phone.wait_message("a-very-long-word-")
            screenshot(phone.page, "chat-phone")
            widths = phone.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert widths[0] <= widths[1], widths

        await in_browser(scenario)

    async def test_rooms_unread_edit_delete_and_older_history(self):
        """Unread counts on rooms not open, switching and leaving; editing and deleting one's own message;
        and older messages loaded by scrolling up."""
        def scenario(browser):
            alice, bob = self._two_in_lobby(browser)
            bob.join("side")
            alice.join("side")
            alice.page.click(".room-button:has-text('lobby')")
            bob.send("in the side room")
            badge = alice.page.locator(".room-button:has-text('side') .badge")
            badge.wait_for()
            assert badge.inner_text() == "1", badge.inner_text()
            alice.page.click(".room-button:has-text('side')")
            alice.wait_message("in the side room")
            assert alice.page.locator(".room-button:has-text('side') .badge").count() == 0

            bob.send("tpyo here")
            alice.wait_message("tpyo here")
            bob.page.once("dialog", lambda dialog: dialog.accept("typo here"))
            bob.act("tpyo here", "Edit")
            alice.wait_message("typo here")
            alice.message("typo here").locator(".edited").wait_for()
            bob.page.once("dialog", lambda dialog: dialog.accept())
            bob.act("typo here", "Delete")
            alice.page.locator(".message.deleted").wait_for()
            assert "typo here" not in alice.texts(), alice.texts()

            for n in range(60):  # more than the 50 a join brings, and faster than the socket budget
                bob.send(f"line {n}")
            bob.wait_until("document.querySelectorAll('.message.pending').length === 0", timeout=60_000)
            alice.wait_until(
                "document.querySelectorAll('#message-list .message:not(.deleted)').length === 61", timeout=30_000)
            fresh = ChatPage(browser, self.server.url)
            fresh.page.evaluate("sessionStorage.clear()")
            fresh.register("carol")
            fresh.signed_in()
            fresh.join("side")
            fresh.wait_until("document.querySelectorAll('#message-list .message').length === 50")
            assert "in the side room" not in fresh.texts(), fresh.texts()
            fresh.page.locator("#messages").evaluate("list => { list.scrollTop = 0; }")
            fresh.wait_message("in the side room")
            texts = fresh.texts()
            # Every message once, the oldest first, the lines in the order bob typed them.
            assert texts[0] == "in the side room", texts
            assert [t for t in texts if t.startswith("line ")] == [f"line {n}" for n in range(60)], texts

            alice.page.click("#leave")
            alice.page.wait_for_selector(".room-button:has-text('side')", state="detached")

        await in_browser(scenario)

    async def test_token_is_refreshed_and_shift_enter_makes_a_new_line(self):
        """A token near its expiry is replaced (REST refresh, then the socket's refresh frame) with the socket
        still working; Shift+Enter adds a line to the message instead of sending it."""
        server = await start_server(self, token_ttl=63)  # the page refreshes 60 s before expiry: after ~3 s

        def scenario(browser):
            dora = ChatPage(browser, server.url)
            dora.register("dora")
            dora.signed_in()
            first = dora.page.evaluate("JSON.parse(sessionStorage.getItem('chatd.session')).token")
            dora.wait_until(
                "token => JSON.parse(sessionStorage.getItem('chatd.session')).token !== token", arg=first)
            dora.join("lobby")
            dora.page.fill("#text", "first line")
            dora.page.press("#text", "Shift+Enter")
            dora.page.type("#text", "second line")
            assert dora.page.locator(".message").count() == 0  # not sent yet
            dora.page.press("#text", "Enter")
            dora.message("first line").locator(".state.sent").wait_for()
            assert dora.texts() == ["first line\nsecond line"], dora.texts()
            assert dora.page.locator("#connection").get_attribute("data-state") == "online"

        await in_browser(scenario)

    async def test_admin_deletes_and_bans_from_the_page(self):
        """The first user (an admin) deletes another's message and bans them; the banned page signs out."""
        def scenario(browser):
            alice, bob = self._two_in_lobby(browser)  # alice registered first: the admin
            bob.send("spam spam")
            alice.wait_message("spam spam")
            assert bob.message("spam spam").locator("button:text-is('Ban bob')").count() == 0
            alice.page.once("dialog", lambda dialog: dialog.accept())
            alice.act("spam spam", "Delete")
            bob.page.locator(".message.deleted").wait_for()
            bob.send("more spam")
            alice.wait_message("more spam")
            alice.page.once("dialog", lambda dialog: dialog.accept("spamming"))
            alice.act("more spam", "Ban bob")
            bob.page.wait_for_selector("#auth:not([hidden])")
            bob.page.wait_for_selector("#auth-error:has-text('banned')")

        await in_browser(scenario)

    async def test_drag_and_drop_upload_and_a_notification_while_hidden(self):
        """A file dropped on the room is shared (a download button elsewhere); a message arriving while the
        tab is hidden raises a desktop notification once the user allowed them."""
        recorder = """
            window.__notes = [];
            window.__hidden = false;
            Object.defineProperty(document, 'hidden', { get: () => window.__hidden });
            window.Notification = class {
                static permission = 'default';
                static requestPermission() { window.Notification.permission = 'granted'; return Promise.resolve('granted'); }
                constructor(title, options) { window.__notes.push([title, options.body]); }
            };
        """

        def scenario(browser):
            alice, bob = self._two_in_lobby(browser)
            alice.page.add_init_script(recorder)
            alice.page.reload()
            alice.signed_in()
            alice.page.wait_for_selector("#room[data-joined=true]")
            alice.page.click("#notify")  # the user allows notifications
            alice.page.wait_for_selector("#notify", state="hidden")
            alice.page.evaluate("window.__hidden = true")
            bob.send("are you there?")
            alice.wait_until("window.__notes.length === 1")
            assert alice.page.evaluate("window.__notes") == [["bob in lobby", "are you there?"]]

            transfer = bob.page.evaluate_handle(
                "() => { const t = new DataTransfer(); t.items.add(new File(['hello'], 'note.txt')); return t; }")
            bob.page.dispatch_event("#room", "drop", {"dataTransfer": transfer})
            alice.page.wait_for_selector("#message-list button.download:has-text('note.txt')")

        await in_browser(scenario)
