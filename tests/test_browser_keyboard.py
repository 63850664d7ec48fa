"""The page with a keyboard (issue 10): focus goes where the user will type after signing in, stays where it
is while messages arrive, message actions show on hover or focus instead of filling the tab order, and
Escape closes the phone's room list."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from tests.browser import PASSWORD, ChatPage, in_browser, require_browser, two_in_lobby
from tests.harness import start_server

ACTIVE = "document.activeElement ? (document.activeElement.id || document.activeElement.tagName) : null"


class KeyboardTests(TestCase):
    timeout = 180

    async def setUp(self):
        require_browser()
        self.server = await start_server(self)

    async def test_focus_goes_where_the_user_types_after_signing_in(self):
        """After registering (no rooms yet) the focus is on the directory's first room or the join field;
        after joining, in the composer; after logging in again, and after a reload, in the composer."""
        def scenario(browser):
            dora = ChatPage(browser, self.server.url)
            dora.register("dora")
            dora.signed_in()
            dora.wait_until(f"['join-room', 'BUTTON'].includes({ACTIVE})")
            dora.join("lobby")
            assert dora.page.evaluate(ACTIVE) == "text"
            dora.page.click("#logout")
            dora.page.wait_for_selector("#auth:not([hidden])")
            dora.page.fill("#username", "dora")
            dora.page.fill("#password", PASSWORD)
            dora.page.press("#password", "Enter")
            dora.signed_in()
            dora.wait_until(f"{ACTIVE} === 'text'")
            dora.page.reload()
            dora.signed_in()
            dora.wait_until(f"{ACTIVE} === 'text'")

        await in_browser(scenario)

    async def test_focus_stays_on_a_message_action_while_the_room_changes(self):
        """A keyboard user on their message's Edit button (reached with ↑ and Tab) keeps the focus on that
        very button while others' messages, a read receipt and a presence event arrive."""
        def scenario(browser):
            alice, bob = two_in_lobby(browser, self.server.url)
            alice.send("mine")
            alice.message("mine").locator(".state.sent").wait_for()
            alice.page.focus("#messages")
            alice.page.keyboard.press("ArrowUp")  # the newest message: "mine"
            alice.page.keyboard.press("Tab")       # its first action
            assert alice.page.evaluate("document.activeElement.textContent") == "Edit"
            alice.page.evaluate("window.__focused = document.activeElement")
            for n in range(3):
                bob.send(f"meanwhile {n}")
            alice.wait_message("meanwhile 2")
            alice.message("mine").locator(".seen:text-is('Seen by bob')").wait_for()
            bob.context.close()  # bob goes offline: a presence notice
            alice.page.wait_for_selector(".notice:text-is('bob went offline')")
            assert alice.page.evaluate("document.activeElement === window.__focused")
            assert alice.page.evaluate("window.__focused.isConnected")
            assert alice.message("mine").locator("button:text-is('Edit')").is_visible()  # shown while focused

        await in_browser(scenario)

    async def test_an_admin_reaches_the_composer_in_a_few_tabs_and_actions_show_on_hover_or_focus(self):
        """An admin (who may delete and ban on every message) tabs from the message list to the composer in
        at most 3 steps, whatever the number of messages; a message's actions are hidden until it is pointed
        at or focused."""
        def scenario(browser):
            alice, bob = two_in_lobby(browser, self.server.url)  # alice is the admin
            for n in range(10):
                bob.send(f"note {n}")
            alice.wait_message("note 9")
            alice.page.mouse.move(0, 0)  # the pointer off the messages (a hovered message shows its actions)
            alice.page.focus("#messages")
            steps = 0
            while alice.page.evaluate(ACTIVE) != "text" and steps < 40:
                alice.page.keyboard.press("Tab")
                steps += 1
            assert steps <= 3, f"{steps} tabs from the messages to the composer"
            actions = alice.message("note 5").locator(".actions")
            assert actions.count() == 1 and actions.is_hidden()
            alice.message("note 5").hover()
            assert actions.is_visible()
            alice.page.mouse.move(0, 0)
            assert actions.is_hidden()
            alice.page.focus("#messages")
            for _ in range(5):
                alice.page.keyboard.press("ArrowUp")  # note 9, 8, 7, 6, 5
            assert actions.is_visible()
            assert alice.page.evaluate("document.activeElement.textContent").find("note 5") >= 0

        await in_browser(scenario)

    async def test_escape_closes_the_phone_room_list(self):
        """On a phone, ☰ opens the room list and Escape closes it again, handing the focus back to ☰."""
        def scenario(browser):
            phone = ChatPage(browser, self.server.url, viewport={"width": 375, "height": 667})
            phone.register("erin")
            phone.signed_in()
            phone.page.click("#rooms-toggle")
            phone.page.wait_for_selector("#rooms-toggle[aria-expanded=true]")
            phone.page.wait_for_timeout(300)  # slid in
            assert phone.page.locator("#join-room").is_visible()
            phone.page.keyboard.press("Escape")
            phone.page.wait_for_selector("#rooms-toggle[aria-expanded=false]")
            assert phone.page.evaluate(ACTIVE) == "rooms-toggle"
            assert not phone.page.evaluate("document.body.classList.contains('sidebar-open')")

        await in_browser(scenario)
