"""Sending from the page under the server's default socket budget (20 frames/s, burst 50): what a user types
is stored in the order typed and confirmed promptly, a reader's receipts never trip the limit, and a message
over 4,000 characters is refused in the page without losing its text (issue 10)."""

from __future__ import annotations

import time

from twisted.trial.unittest import TestCase

from tests.browser import ChatPage, in_browser, on_reactor, require_browser
from tests.harness import start_server
from tests.wsclient import joined_users

HISTORY = """async (room) => {
    const session = JSON.parse(sessionStorage.getItem('chatd.session'));
    const response = await fetch(`/api/rooms/${room}/messages?limit=200`,
        { headers: { Authorization: `Bearer ${session.token}` } });
    return (await response.json()).messages.map((message) => message.text);
}"""


def refusals(page: ChatPage) -> list[dict]:
    return [f for f in page.received if f.get("type") == "error" and f.get("code") == "rate_limited"]


class SendingTests(TestCase):
    timeout = 240

    async def setUp(self):
        require_browser()
        self.server = await start_server(self)  # the default --socket-rate

    def _alice_in(self, browser, room: str) -> ChatPage:
        alice = ChatPage(browser, self.server.url)
        alice.register("alice")
        alice.signed_in()
        alice.join(room)
        return alice

    async def test_a_hundred_messages_typed_fast_are_stored_in_order_and_confirmed_promptly(self):
        """100 messages typed as fast as a keyboard allows are all stored in the order typed, each once, and
        the last is confirmed within 10 s, with nothing refused for speed along the way."""
        def scenario(browser):
            alice = self._alice_in(browser, "lobby")
            alice.page.focus("#text")
            for n in range(100):
                alice.page.keyboard.insert_text(f"line {n}")
                alice.page.keyboard.press("Enter")
            typed = time.monotonic()
            alice.wait_until("document.querySelectorAll('.message.pending').length === 0", timeout=60_000)
            confirmed = time.monotonic() - typed
            stored = alice.page.evaluate(HISTORY, "lobby")
            return confirmed, stored, refusals(alice), alice.texts()

        confirmed, stored, refused, shown = await in_browser(scenario)
        print(f"outbox: 100 typed, last confirmed {confirmed:.1f} s after the last Enter, {len(refused)} refusals")
        expected = [f"line {n}" for n in range(100)]
        self.assertEqual(stored, expected)
        self.assertEqual(shown, expected)
        self.assertEqual(refused, [])
        self.assertLess(confirmed, 10, f"the last message was confirmed {confirmed:.1f} s after typing")

    async def _chatter(self, sockets, room: str, each: int) -> None:
        for n in range(each):  # each bot spends its own burst: the reader gets 2 × ``each`` at once
            for index, socket in enumerate(sockets):
                socket.send({"type": "message", "room": room, "text": f"bot{index} says {n}"})

    async def test_a_reader_sends_a_receipt_a_second_and_is_never_rate_limited(self):
        """Someone who only reads a busy room (100 messages in a moment from two others) is never refused
        for speed: read receipts go at most once a second, each up to the newest message, and so do typing
        indicators while typing."""
        bots = await joined_users(self.server, "lobby", "bob", "carol", test=self)

        def scenario(browser):
            alice = self._alice_in(browser, "lobby")
            started = time.monotonic()
            on_reactor(self._chatter, bots, "lobby", 50)
            alice.wait_until("document.querySelectorAll('#message-list .message').length === 100")
            alice.page.wait_for_timeout(1500)  # any receipt still due has gone
            reads = alice.sent_of("read")
            read_seconds = time.monotonic() - started
            typing_started = time.monotonic()
            alice.page.type("#text", "a reply that takes a while to write", delay=60)
            typing_seconds = time.monotonic() - typing_started
            alice.page.wait_for_timeout(1200)
            typing = alice.sent_of("typing")
            return reads, read_seconds, typing, typing_seconds, refusals(alice), alice.errors

        reads, read_seconds, typing, typing_seconds, refused, errors = await in_browser(scenario)
        print(f"receipts: {len(reads)} read frames in {read_seconds:.1f} s for 100 messages, "
              f"{len(typing)} typing frames in {typing_seconds:.1f} s, {len(refused)} refusals")
        self.assertEqual(refused, [])
        self.assertEqual(errors, [])
        self.assertLessEqual(len(reads), read_seconds + 2, reads)
        self.assertEqual(reads[-1]["seq"], 100, reads)  # the last receipt covers everything read
        self.assertTrue(typing and typing[0]["typing"] is True, typing)
        self.assertLessEqual(len(typing), typing_seconds + 2, typing)

    async def test_a_message_over_4000_characters_is_refused_in_the_page_and_kept(self):
        """A count shows near the limit; a message over 4,000 characters is not sent, stays in the composer
        and says why; trimmed to 4,000 it is sent. The limit counts characters as the server does (an
        emoji is one)."""
        def scenario(browser):
            alice = self._alice_in(browser, "lobby")
            page = alice.page
            assert page.locator("#count").is_hidden()
            page.fill("#text", "x" * 3600)
            page.wait_for_selector("#count:text-is('3,600 / 4,000')")
            page.fill("#text", "y" * 4001)
            page.press("#text", "Enter")
            page.wait_for_selector("#count-error:has-text('4,001 characters')")
            assert "4,000" in page.inner_text("#count-error")
            assert page.input_value("#text") == "y" * 4001  # nothing lost
            assert "over" in page.get_attribute("#count", "class").split()
            page.wait_for_timeout(300)
            assert page.locator("#message-list .message").count() == 0
            assert alice.sent_of("message") == []
            page.press("#text", "Backspace")  # 4,000: allowed
            page.press("#text", "Enter")
            alice.message("y" * 4000).locator(".state.sent").wait_for()
            assert page.input_value("#text") == "" and page.inner_text("#count-error") == ""
            page.fill("#text", "😀" * 4000)  # 8,000 UTF-16 units, 4,000 characters
            page.press("#text", "Enter")
            alice.message("😀" * 4000).locator(".state.sent").wait_for()
            assert not alice.errors, alice.errors

        await in_browser(scenario)
