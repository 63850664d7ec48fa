"""Search on the page (issue 13), in Debian's Chromium against a real chatd: the box in the top bar lists
matches from every room the user may read with their room, author and time, pages with "More results" (in
order, none twice), and picking an old message opens its room there, loading older history down to it; a
private room's messages are found by its members only."""

from __future__ import annotations

from twisted.internet import reactor, task
from twisted.trial.unittest import TestCase

from chatd.ratelimit import Rate
from tests.browser import PASSWORD, ChatPage, in_browser, require_browser, signed_up
from tests.harness import start_server
from tests.wsclient import joined, joined_users


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

    async def test_more_results_pages_back_in_order_with_none_twice(self):
        """45 messages of bob's match "report": ann sees the newest 20, "More results" (double-clicked) adds the
        next 20 once, and again the last 5; all 45 newest first, none twice, and the button goes."""
        (bob,) = await joined_users(self.server, "lobby", "bob", test=self)
        for n in range(45):  # one at a time, each in its own millisecond: "newest" is then unambiguous
            bob.send({"type": "message", "room": "lobby", "text": f"report {n}", "client_id": f"r-{n}"})
            await bob.next("ack", timeout=30)
            await task.deferLater(reactor, 0.003, lambda: None)

        def scenario(browser):
            ann = signed_up(browser, self.server.url, "ann")
            ann.page.fill("#search-q", "report")
            ann.page.press("#search-q", "Enter")
            texts = ann.page.locator("#search-results .search-text")
            ann.wait_until("document.querySelectorAll('#search-results .search-result').length === 20")
            assert texts.all_inner_texts() == [f"report {n}" for n in range(44, 24, -1)], texts.all_inner_texts()
            assert ann.page.inner_text("#search-status") == "20 messages so far"
            ann.page.dblclick("#search-more")
            ann.wait_until("document.querySelectorAll('#search-results .search-result').length >= 40")
            ann.page.wait_for_timeout(500)  # a second page for the double click would have come by now
            assert texts.all_inner_texts() == [f"report {n}" for n in range(44, 4, -1)]
            ann.page.click("#search-more")
            ann.wait_until("document.querySelectorAll('#search-results .search-result').length >= 45")
            ann.page.wait_for_selector("#search-more", state="hidden")
            assert texts.all_inner_texts() == [f"report {n}" for n in range(44, -1, -1)]
            seqs = ann.page.eval_on_selector_all("#search-results .search-result", "items => items.map((i) => i.dataset.seq)")
            assert len(set(seqs)) == 45, seqs
            assert ann.page.inner_text("#search-status") == "45 messages"
            assert not ann.errors, ann.errors

        await in_browser(scenario)

    async def test_a_private_rooms_result_is_its_members_only(self):
        """bob's private room "vault" has ann as a member and a message about the launch; "lobby" has another.
        ann finds both and the vault one opens the private room at that message; carol, no member, finds only
        the lobby one, and nothing of the vault shows on her page."""
        http = self.server.client()
        bob_token = (await http.register("bob"))["token"]
        await http.register("ann", password=PASSWORD)
        created = await http.request("POST", "/api/rooms", {"name": "vault", "visibility": "private"}, token=bob_token)
        assert created.status == 201, created
        added = await http.request("POST", "/api/rooms/vault/members", {"user": "ann"}, token=bob_token)
        assert added.status == 201, added
        bob = await joined(self.server.url, bob_token, "vault", test=self)
        bob.send({"type": "message", "room": "vault", "text": "the launch code is blue", "client_id": "v-1"})
        await bob.next("ack", timeout=30)
        bob.send({"type": "join", "room": "lobby"})
        await bob.next("joined", timeout=30)
        bob.send({"type": "message", "room": "lobby", "text": "launch party at noon", "client_id": "l-1"})
        await bob.next("ack", timeout=30)

        def scenario(browser):
            carol = signed_up(browser, self.server.url, "carol")
            carol.page.fill("#search-q", "launch")
            carol.page.press("#search-q", "Enter")
            carol.page.locator("#search-results .search-result").first.wait_for()
            carol.page.wait_for_selector("#search-status:has-text('1 message')")
            assert carol.page.locator("#search-results .search-text").all_inner_texts() == ["launch party at noon"]
            assert "vault" not in carol.page.inner_text("body") and "code" not in carol.page.inner_text("body")

            ann = ChatPage(browser, self.server.url)
            ann.page.fill("#username", "ann")
            ann.page.fill("#password", PASSWORD)
            ann.page.click("#auth-submit")
            ann.signed_in()
            ann.page.fill("#search-q", "launch")
            ann.page.press("#search-q", "Enter")
            results = ann.page.locator("#search-results .search-result")
            results.nth(1).wait_for()
            assert ann.page.locator("#search-results .search-room").all_inner_texts() == ["lobby", "vault"]
            results.nth(1).click()
            ann.page.wait_for_selector("#room-title:text-is('vault')")
            assert ann.page.is_visible("#room-lock")
            ann.wait_until("document.activeElement && document.activeElement.dataset.seq === '1'")
            assert ann.page.locator("#message-list .message.found .text").inner_text() == "the launch code is blue"
            assert not ann.errors and not carol.errors, (ann.errors, carol.errors)

        await in_browser(scenario)
