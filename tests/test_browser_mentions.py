"""Mentions on the page (issue 13), in Debian's Chromium against a real chatd: "@" in the composer offers the
room's usernames (keyboard and pointer), a message mentioning the user is marked, a room where they were
mentioned shows a mention badge (live, and after a reload from /api/sessions), and a mention brings a desktop
notification when the user is not reading that room."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from tests.browser import ChatPage, in_browser, require_browser, signed_up
from tests.harness import start_server

# A Notification that records what the page shows (permission already granted), before the page's scripts.
RECORD_NOTIFICATIONS = """
window.__notifications = [];
window.Notification = class {
  static permission = 'granted';
  static requestPermission() { return Promise.resolve('granted'); }
  constructor(title, options) { window.__notifications.push({ title, body: options && options.body }); }
};
"""


def mention_badge(chat: ChatPage, room: str):
    return chat.page.locator(f".room-button[data-room='{room}'] .mention-badge")


class MentionsPageTests(TestCase):
    timeout = 240

    async def setUp(self):
        require_browser()
        self.server = await start_server(self)
        await self.server.client().register("root")  # the site admin: no page of theirs here

    async def test_at_offers_the_rooms_usernames_and_the_mentioned_user_sees_it_marked(self):
        """ann types "@b": the list offers bob and bea (not herself); ↓ and Enter put "@bob " in the box
        without sending; she sends, and bob's page marks the message and his name in it."""

        def scenario(browser):
            ann = signed_up(browser, self.server.url, "ann")
            bob = signed_up(browser, self.server.url, "bob")
            bea = signed_up(browser, self.server.url, "bea")
            for chat in (ann, bob, bea):
                chat.join("lobby")
            ann.page.wait_for_selector("#members li[data-user='bea']")
            ann.page.focus("#text")
            ann.page.keyboard.type("hi @b")
            ann.page.wait_for_selector("#composer .mention-list:not([hidden])")
            offered = ann.page.locator("#composer .mention-list li").all_inner_texts()
            assert offered == ["bea", "bob"], offered
            assert ann.page.get_attribute("#text", "aria-expanded") == "true"
            ann.page.keyboard.press("ArrowDown")
            ann.page.keyboard.press("Enter")
            assert ann.page.input_value("#text") == "hi @bob "
            assert ann.page.is_hidden("#composer .mention-list")
            assert not ann.sent_of("message")
            ann.page.keyboard.type("lunch?")
            ann.page.keyboard.press("Enter")
            bob.wait_message("hi @bob lunch?")
            item = bob.message("hi @bob lunch?")
            item.locator("mark.mention", has_text="@bob").wait_for()
            assert "mentions-me" in item.get_attribute("class")
            assert bea.message("hi @bob lunch?").locator("mark").count() == 0
            # With the pointer, in a thread's reply box too.
            bob.message("hi @bob lunch?").hover()
            bob.message("hi @bob lunch?").locator("button[data-focus=reply]").click()
            bob.page.fill("#thread-text", "")
            bob.page.type("#thread-text", "sure @an")
            bob.page.locator("#thread .mention-list li[data-user=ann]").click()
            assert bob.page.input_value("#thread-text") == "sure @ann "
            assert not ann.errors and not bob.errors and not bea.errors

        await in_browser(scenario)

    async def test_a_mention_elsewhere_makes_a_badge_and_a_notification(self):
        """bob reads another room while ann mentions him in lobby: lobby gets a mention badge and bob a desktop
        notification; after a reload the badge comes from /api/sessions; opening lobby clears it. A mention in
        the room he reads brings no notification."""

        def scenario(browser):
            ann = signed_up(browser, self.server.url, "ann")
            bob = signed_up(browser, self.server.url, "bob", init_script=RECORD_NOTIFICATIONS)
            ann.join("lobby")
            bob.join("lobby")
            bob.join("elsewhere")
            ann.send("@bob can you look at this?")
            mention_badge(bob, "lobby").wait_for()
            assert mention_badge(bob, "lobby").inner_text() == "@1"
            assert mention_badge(bob, "lobby").get_attribute("aria-label") == "1 mention of you"
            bob.wait_until("window.__notifications.length === 1")
            note = bob.page.evaluate("window.__notifications[0]")
            assert note == {"title": "ann mentioned you in lobby", "body": "@bob can you look at this?"}, note
            bob.page.reload()
            bob.signed_in()
            mention_badge(bob, "lobby").wait_for()
            bob.page.click(".room-button[data-room='lobby']")
            bob.page.wait_for_selector("#room-title:text-is('lobby')")
            mention_badge(bob, "lobby").wait_for(state="detached")
            ann.send("thanks @bob")
            bob.wait_message("thanks @bob")  # a name typed in full: Enter sends rather than completes
            bob.page.wait_for_timeout(300)
            assert bob.page.evaluate("window.__notifications.length") == 0  # a fresh page after the reload
            assert not ann.errors and not bob.errors

        await in_browser(scenario)

    async def test_a_mention_in_a_room_the_user_is_not_in_tells_them_without_joining(self):
        """ann mentions bob in "general", a public room bob never joined: bob's page tells him who, where and
        what (in the page and as a desktop notification) but does not add or join the room for him."""

        def scenario(browser):
            ann = signed_up(browser, self.server.url, "ann")
            bob = signed_up(browser, self.server.url, "bob", init_script=RECORD_NOTIFICATIONS)
            bob.join("lobby")
            ann.join("general")
            ann.send("@bob have a look at the release notes")
            bob.page.wait_for_selector("#alert:not([hidden])")
            text = bob.page.inner_text("#alert-text")
            assert text.startswith("ann mentioned you in general, a room you are not in"), text
            assert "have a look at the release notes" in text, text
            bob.wait_until("window.__notifications.length === 1")
            note = bob.page.evaluate("window.__notifications[0]")
            assert note == {"title": "ann mentioned you in general", "body": "@bob have a look at the release notes"}, note
            bob.page.wait_for_timeout(300)
            assert bob.page.locator(".room-button[data-room='general']").count() == 0
            assert not [f for f in bob.sent if f.get("room") == "general"], bob.sent
            assert bob.page.inner_text("#room-title") == "lobby"
            assert not ann.errors and not bob.errors

        await in_browser(scenario)
