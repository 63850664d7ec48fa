"""Search on the page (issue 13), in Debian's Chromium against a real chatd: the box in the top bar lists
matches from every room the user may read with their room, author and time, pages with "More results", and
picking an old message opens its room there, loading older history down to it."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from chatd.ratelimit import Rate
from tests.browser import ChatPage, in_browser, require_browser
from tests.harness import start_server
from tests.wsclient import joined_users


class SearchPageTests(TestCase):
    timeout = 300

    async def setUp(self):
        require_browser()
        self.server = await start_server(self, socket_rate=Rate(0, 0))

    async def test_a_result_opens_its_room_at_that_message_loading_older_history(self):
        """bob filled "archive" with 150 messages (the third mentions a zebra) and "lobby" with one; ann
        searches "zeb", sees both with room and time, clicks the archive one: the room opens (joined from
        the result), older pages load down to it, and it is in view with the focus."""
        (bob,) = await joined_users(self.server, "archive", "bob", test=self)
        texts = [f"note {n}" for n in range(150)]
        texts[2] = "the zebra crossing is closed"
        for n, text in enumerate(texts):
            bob.send({"type": "message", "room": "archive", "text": text, "client_id": f"a-{n}"})
        for _ in texts:
            await bob.next("ack", timeout=60)
        bob.send({"type": "join", "room": "lobby"})
        await bob.next("joined", timeout=30)
        bob.send({"type": "message", "room": "lobby", "text": "Zebras everywhere", "client_id": "l-1"})
        await bob.next("ack", timeout=30)

        def scenario(browser):
            ann = ChatPage(browser, self.server.url)
            ann.register("ann")
            ann.signed_in()
            ann.join("lobby")
            ann.page.fill("#search-q", "zeb")
            ann.page.press("#search-q", "Enter")
            ann.page.wait_for_selector("#search-dialog[open]")
            results = ann.page.locator("#search-results .search-result")
            results.nth(1).wait_for()
            assert results.count() == 2
            assert ann.page.evaluate("document.activeElement.classList.contains('search-result')")
            first, second = results.nth(0), results.nth(1)
            assert first.locator(".search-room").inner_text() == "lobby"  # newest first
            assert second.locator(".search-room").inner_text() == "archive"
            assert second.locator(".search-text").inner_text() == "the zebra crossing is closed"
            assert second.locator("time").get_attribute("datetime")
            second.click()
            ann.page.wait_for_selector("#search-dialog", state="hidden")
            ann.page.wait_for_selector("#room-title:text-is('archive')")
            found = ann.page.locator("#message-list .message[data-seq='3']")
            found.wait_for()
            ann.wait_until("document.activeElement && document.activeElement.dataset.seq === '3'")
            assert "found" in found.get_attribute("class")
            box = found.bounding_box()
            view = ann.page.locator("#messages").bounding_box()
            assert view["y"] <= box["y"] <= view["y"] + view["height"], (box, view)
            assert not ann.errors, ann.errors

        await in_browser(scenario)
