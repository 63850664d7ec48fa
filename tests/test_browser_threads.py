"""Threads and reactions on the page (issue 13), in Debian's Chromium against a real chatd: the Reply button
opens a thread beside the room, replies go there (not into the room's list) and reach the other reader live,
with the root's reply count in the timeline; the reaction bar toggles an emoji by click (the six common ones
and any typed one), with who reacted in its title, live on both pages."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from tests.browser import PHONE, ChatPage, in_browser, require_browser, screenshot, signed_up
from tests.harness import start_server


def reaction(chat: ChatPage, text: str, emoji: str):
    """The toggle of ``emoji`` under the room's message ``text``."""
    return chat.message(text).locator(f".reaction[data-emoji='{emoji}']")


class ThreadsAndReactionsPageTests(TestCase):
    timeout = 240

    async def setUp(self):
        require_browser()
        self.server = await start_server(self)
        await self.server.client().register("root")  # the site admin: no page of theirs here

    async def test_a_thread_opens_beside_the_room_and_replies_arrive_live(self):
        """bob replies to ann's message from its Reply button; the reply shows in his thread panel and not in
        the room's list, ann's timeline shows "1 reply" live, her panel (opened from that link) gets bob's
        next reply live, and she answers from the keyboard; Escape closes the panel and focus goes back to
        the root."""

        def scenario(browser):
            ann = signed_up(browser, self.server.url, "ann")
            bob = signed_up(browser, self.server.url, "bob")
            ann.join("lobby")
            bob.join("lobby")
            ann.send("Where shall we eat?")
            bob.wait_message("Where shall we eat?")
            root = bob.message("Where shall we eat?")
            root.hover()
            root.locator("button[data-focus=reply]").click()
            bob.page.wait_for_selector("#thread:not([hidden])")
            assert bob.page.evaluate("document.activeElement.id") == "thread-text"
            bob.page.fill("#thread-text", "The noodle place")
            bob.page.press("#thread-text", "Enter")
            bob.page.locator("#thread-list .message .text", has_text="The noodle place").wait_for()
            # Ann: the count under the root, not the reply itself, in the room's list.
            ann.message("Where shall we eat?").locator(".thread-link", has_text="1 reply").wait_for()
            assert ann.message("The noodle place").count() == 0
            sent = [f for f in bob.sent_of("message") if f.get("text") == "The noodle place"]
            assert sent and sent[0]["reply_to"] == 1, sent
            ann.message("Where shall we eat?").locator(".thread-link").click()
            ann.page.wait_for_selector("#thread:not([hidden])")
            ann.page.locator("#thread-list .message .text", has_text="The noodle place").wait_for()
            bob.page.fill("#thread-text", "or pizza")
            bob.page.press("#thread-text", "Enter")
            ann.page.locator("#thread-list .message .text", has_text="or pizza").wait_for()
            ann.page.locator("#thread-title", has_text="2 replies").wait_for()
            ann.message("Where shall we eat?").locator(".thread-link", has_text="2 replies").wait_for()
            ann.page.focus("#thread-text")
            ann.page.keyboard.type("Noodles it is")
            ann.page.keyboard.press("Enter")
            bob.page.locator("#thread-list .message .text", has_text="Noodles it is").wait_for()
            ann.page.keyboard.press("Escape")
            ann.page.wait_for_selector("#thread", state="hidden")
            assert ann.page.evaluate("document.activeElement.dataset.seq") == "1"
            assert not ann.errors and not bob.errors, (ann.errors, bob.errors)

        await in_browser(scenario)

    async def test_reactions_toggle_by_click_with_who_reacted(self):
        """ann adds 👍 from the picker and a typed 🦄; bob sees both live and adds his 👍 by clicking the
        toggle (count 2, pressed for him, both names in its title); ann's click takes hers back. The thread
        and the reactions together make the README's screenshot."""

        def scenario(browser):
            ann = signed_up(browser, self.server.url, "ann")
            bob = signed_up(browser, self.server.url, "bob")
            ann.join("lobby")
            bob.join("lobby")
            ann.send("Release 2.0 is out")
            bob.wait_message("Release 2.0 is out")
            message = ann.message("Release 2.0 is out")
            message.hover()
            message.locator(".react-add").click()
            message.locator(".react-choice[data-emoji='👍']").click()
            reaction(bob, "Release 2.0 is out", "👍").locator(".count", has_text="1").wait_for()
            message = ann.message("Release 2.0 is out")
            message.hover()
            message.locator(".react-add").click()
            message.locator(".react-typed").fill("🦄")
            message.locator(".react-typed").press("Enter")
            reaction(bob, "Release 2.0 is out", "🦄").wait_for()
            reaction(bob, "Release 2.0 is out", "👍").click()
            toggle = reaction(ann, "Release 2.0 is out", "👍")
            toggle.locator(".count", has_text="2").wait_for()
            assert toggle.get_attribute("title") == "Reacted 👍 by ann, bob"
            assert toggle.get_attribute("aria-pressed") == "true"
            bob.wait_until("document.querySelector(\".reaction[data-emoji='👍']\").getAttribute('aria-pressed') === 'true'")
            sent = bob.sent_of("react")
            assert sent[-1] == {"type": "react", "room": "lobby", "seq": 1, "emoji": "👍", "on": True}, sent
            # A thread for the screenshot: bob replies, ann opens it.
            bob.message("Release 2.0 is out").hover()
            bob.message("Release 2.0 is out").locator("button[data-focus=reply]").click()
            bob.page.fill("#thread-text", "Congratulations! 🎉")
            bob.page.press("#thread-text", "Enter")
            ann.message("Release 2.0 is out").locator(".thread-link").click()
            ann.page.locator("#thread-list .message .text", has_text="Congratulations!").wait_for()
            ann.page.mouse.move(0, 0)
            screenshot(ann.page, "threads-reactions")
            # Ann takes her 👍 back.
            reaction(ann, "Release 2.0 is out", "👍").first.click()
            reaction(bob, "Release 2.0 is out", "👍").locator(".count", has_text="1").first.wait_for()
            bob.wait_until("document.querySelector(\"#message-list .reaction[data-emoji='👍']\").title === 'Reacted 👍 by bob'")
            assert not ann.errors and not bob.errors, (ann.errors, bob.errors)

        await in_browser(scenario)

    async def test_the_thread_panel_fits_a_phone(self):
        """On a phone the thread covers the room, its reply box is usable, and Close gives the room back."""

        def scenario(browser):
            ann = signed_up(browser, self.server.url, "ann", viewport=PHONE)
            ann.join("lobby")
            ann.send("Anyone?")
            ann.wait_message("Anyone?")
            ann.message("Anyone?").click()
            ann.message("Anyone?").locator("button[data-focus=reply]").click()
            ann.page.fill("#thread-text", "Me")
            ann.page.press("#thread-text", "Enter")
            ann.page.locator("#thread-list .message .text", has_text="Me").wait_for()
            box = ann.page.locator("#thread").bounding_box()
            assert box["width"] <= PHONE["width"] and box["x"] >= 0, box
            ann.page.click("#thread-close")
            ann.page.wait_for_selector("#thread", state="hidden")
            ann.message("Anyone?").locator(".thread-link", has_text="1 reply").wait_for()
            assert not ann.errors, ann.errors

        await in_browser(scenario)
