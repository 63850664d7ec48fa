"""What a new user meets in the page (issue 10): a directory of rooms instead of an empty screen, "seen by"
that survives a reload, clickable (and only http/https) links, images that open large and can be saved, and
sizes shown as people read them."""

from __future__ import annotations

import re

from twisted.trial.unittest import TestCase

from tests.browser import ChatPage, in_browser, require_browser, tiny_png, two_in_lobby
from tests.harness import start_server

LINKS = ("docs at https://example.com/a?b=1, not javascript:alert(1) nor <a href=x>y</a> "
         "(see https://en.wikipedia.org/wiki/Foo_(bar)). JAVASCRIPT://x.org%0aalert(1) http://[bad")


class RoomsTests(TestCase):
    timeout = 180

    async def setUp(self):
        require_browser()
        self.server = await start_server(self)

    async def test_a_newcomer_sees_the_room_directory_and_opens_the_busy_room(self):
        """A user with no rooms sees every room with its members, who is online and its last activity, the
        busiest first and focused; Enter joins it, shows its messages and puts the cursor in the composer."""
        def scenario(browser):
            alice, bob = two_in_lobby(browser, self.server.url)
            alice.send("welcome, newcomers")
            bob.wait_message("welcome, newcomers")
            alice.join("quiet")  # one member, no message
            carol = ChatPage(browser, self.server.url)
            carol.register("carol")
            carol.signed_in()
            carol.page.wait_for_selector("#directory .directory-open")
            rooms = carol.page.locator("#directory .directory-open")
            assert [n.strip() for n in carol.page.locator(".directory-name").all_inner_texts()] == ["lobby", "quiet"]
            lobby = rooms.nth(0).inner_text()
            assert "2 members" in lobby and "2 online" in lobby and "active just now" in lobby, lobby
            assert "most active" in lobby, lobby
            quiet = rooms.nth(1).inner_text()
            assert "1 member" in quiet and "1 online" in quiet and "no messages yet" in quiet, quiet
            carol.wait_until("document.activeElement && document.activeElement.dataset.room === 'lobby'")
            carol.page.keyboard.press("Enter")
            carol.page.wait_for_selector("#room-title:text-is('lobby')")
            carol.wait_message("welcome, newcomers")
            carol.page.wait_for_selector("#room[data-joined=true]")
            assert carol.page.evaluate("document.activeElement.id") == "text"
            carol.page.keyboard.type("hello all")
            carol.page.keyboard.press("Enter")
            alice.page.click(".room-button:has-text('lobby')")
            alice.wait_message("hello all")
            assert not carol.errors, carol.errors

        await in_browser(scenario)

    async def test_seen_by_is_rebuilt_after_a_reload(self):
        """"Seen by" under one's last message comes back after a reload, from the server's read positions."""
        def scenario(browser):
            alice, bob = two_in_lobby(browser, self.server.url)
            alice.send("did you see this?")
            bob.wait_message("did you see this?")
            alice.page.wait_for_selector(".seen:text-is('Seen by bob')")
            alice.page.reload()
            alice.signed_in()
            alice.wait_message("did you see this?")
            alice.page.wait_for_selector(".seen:text-is('Seen by bob')")
            seen = alice.message("did you see this?").locator(".seen")
            assert seen.count() == 1, seen.count()

        await in_browser(scenario)

    async def test_links_are_clickable_and_only_for_http_and_https(self):
        """http(s) addresses in a message become links opening apart (rel="noopener noreferrer"), without the
        sentence's punctuation but with a link's own parentheses; nothing else becomes a link or markup."""
        def scenario(browser):
            alice, bob = two_in_lobby(browser, self.server.url)
            alice.send(LINKS)
            bob.wait_message("docs at")
            text = bob.message("docs at").locator(".text")
            assert text.inner_text() == LINKS, text.inner_text()
            links = text.locator("a")
            hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
            assert hrefs == ["https://example.com/a?b=1", "https://en.wikipedia.org/wiki/Foo_(bar)"], hrefs
            for i in range(links.count()):
                assert links.nth(i).get_attribute("rel") == "noopener noreferrer"
                assert links.nth(i).get_attribute("target") == "_blank"
            assert bob.page.locator("#message-list a[href^='javascript' i]").count() == 0
            assert [links.nth(i).inner_text() for i in range(2)] == hrefs
            # A click opens the address in a new tab, which cannot reach back to the chat (answered here:
            # the test stays on loopback).
            bob.page.context.route("https://example.com/**", lambda route: route.fulfill(body="elsewhere"))
            with bob.page.context.expect_page() as opened:
                links.nth(0).click()
            opened.value.wait_for_load_state()
            assert opened.value.url == "https://example.com/a?b=1", opened.value.url
            assert opened.value.evaluate("window.opener") is None

        await in_browser(scenario)

    async def test_an_image_opens_large_and_can_be_saved(self):
        """Clicking an image preview opens it at full size in a viewer with its name, size and a Save link
        (the file's own name); Escape closes it."""
        def scenario(browser):
            alice, bob = two_in_lobby(browser, self.server.url)
            alice.page.set_input_files("#file-input", files=[{"name": "red.png", "mimeType": "image/png", "buffer": tiny_png()}])
            bob.wait_until("""() => [...document.querySelectorAll("#message-list .file img[alt='red.png']")]
                .some((img) => img.complete && img.naturalWidth === 24)""")
            bob.page.click("#message-list .file button.preview")
            bob.page.wait_for_selector("#viewer[open]")
            bob.wait_until("""() => { const img = document.getElementById('viewer-image');
                return img.complete && img.naturalWidth === 24 && img.src.startsWith('blob:'); }""")
            save = bob.page.locator("#viewer-save")
            assert save.get_attribute("download") == "red.png"
            assert save.get_attribute("href").startswith("blob:")
            assert re.fullmatch(r"red\.png · \d+ B", bob.page.inner_text("#viewer-name")), bob.page.inner_text("#viewer-name")
            with bob.page.expect_download() as saving:
                save.click()
            assert saving.value.suggested_filename == "red.png"
            bob.page.keyboard.press("Escape")
            bob.page.wait_for_selector("#viewer", state="hidden")

        await in_browser(scenario)

    async def test_a_refused_upload_says_its_size_in_megabytes(self):
        """An upload over the server's limit is refused with the limit as a size people read ("1.1 MB"),
        never a count of bytes, and the page names the file and its size."""
        server = await start_server(self, max_upload=1 << 20)  # 1 MB

        def scenario(browser):
            dora = ChatPage(browser, server.url)
            dora.register("dora")
            dora.signed_in()
            dora.join("lobby")
            dora.page.set_input_files("#file-input", files=[{"name": "big.bin", "mimeType": "application/octet-stream",
                                                             "buffer": b"\0" * (3 << 20)}])
            dora.page.wait_for_selector("#alert:not([hidden])")
            return dora.page.inner_text("#alert-text")

        shown = await in_browser(scenario)
        self.assertRegex(shown, r"big\.bin \(3 MB\)")
        self.assertRegex(shown, r"\d(\.\d)? MB\.")
        self.assertNotRegex(shown, r"\d{4,}")
