"""Private rooms, direct messages and roles on the page (issue 12), in Debian's Chromium against a real chatd:
the direct-message picker, the create-room dialog, the members panel and its buttons, the topic in the header,
and live invitations and removals. The first account (the site admin) is registered over REST and never
opens a page, so every page here is a plain user whose buttons come from their room role alone."""

from __future__ import annotations

import json

from twisted.trial.unittest import TestCase

from tests.browser import PHONE, ChatPage, in_browser, require_browser, screenshot, signed_up
from tests.harness import start_server


def create_room(chat: ChatPage, name: str, private: bool, topic: str = "") -> None:
    """Make a room through the "New room" dialog and wait until the page has it open and joined."""
    page = chat.page
    page.click("#new-room")
    page.wait_for_selector("#create-dialog[open]")
    page.fill("#create-name", name)
    page.check(f"#create-form input[value={'private' if private else 'public'}]")
    page.fill("#create-topic", topic)
    page.click("#create-submit")
    page.wait_for_selector("#create-dialog", state="hidden")
    page.wait_for_selector(f"#room-title:text-is('{name}')")
    page.wait_for_selector("#room[data-joined=true]")


def invite(chat: ChatPage, user: str, role: str | None = None) -> None:
    """Add ``user`` to the open room from the members panel, and wait for their row."""
    chat.page.fill("#invite-user", user)
    if role:
        chat.page.select_option("#invite-role", role)
    chat.page.click("#invite-form button[type=submit]")
    chat.page.wait_for_selector(f"#members li[data-user='{user}']")


def room_button(chat: ChatPage, label: str):
    """The sidebar button of the room (or direct room) shown as ``label``."""
    return chat.page.locator(f".room-button:has(.room-name:text-is('{label}'))")


def wait_joined(chat: ChatPage, room: str) -> None:
    """Wait (bounded) until the page's socket received ``joined`` for ``room``."""
    chat.wait_until("true")  # one poll of the page, so its recorded frames are current
    for _ in range(300):
        if any(f.get("type") == "joined" and f.get("room") == room for f in chat.received):
            return
        chat.page.wait_for_timeout(50)
    raise AssertionError(f"no joined for {room}")


def texts_received(chat: ChatPage, room: str) -> list[str]:
    """The texts of every message frame of ``room`` the page's sockets received."""
    return [f.get("text") for f in chat.received if f.get("type") == "message" and f.get("room") == room]


class PrivateRoomsPageTests(TestCase):
    timeout = 240

    async def setUp(self):
        require_browser()
        self.server = await start_server(self)
        await self.server.client().register("root")  # the site admin: no page of theirs here

    async def test_a_direct_message_from_the_picker_reaches_the_other_user_live(self):
        """olive starts a DM with bob by keyboard from the picker (an unknown name and herself are refused
        there); it opens for her and appears at once in bob's "Direct messages", named by the other person
        (never dm-…), with no Leave, invite or lock; messages flow both ways."""
        def scenario(browser):
            olive = signed_up(browser, self.server.url, "olive")
            bob = signed_up(browser, self.server.url, "bob")
            page = olive.page
            page.focus("#new-dm")
            page.keyboard.press("Enter")
            page.wait_for_selector("#dm-dialog[open]")
            assert page.evaluate("document.activeElement.id") == "dm-user"
            for typed, why in (("nobody", 'Nobody is called "nobody".'), ("olive", "You are in it already")):
                olive.wait_until("document.getElementById('known-users').options.length === 3")
                page.keyboard.type(typed)
                page.keyboard.press("Enter")
                page.wait_for_selector(f"#dm-error:has-text('{why}')")
                page.fill("#dm-user", "")
            page.keyboard.type("bob")
            page.keyboard.press("Enter")  # adds bob
            page.wait_for_selector("#dm-picked li[data-user=bob]")
            assert page.inner_text("#dm-submit") == "Start with bob"
            page.keyboard.press("Enter")  # nothing typed: starts it
            page.wait_for_selector("#dm-dialog", state="hidden")
            page.wait_for_selector("#room-title:text-is('bob')")
            page.wait_for_selector("#room[data-joined=true]")
            name = page.evaluate("decodeURIComponent(location.hash.slice(1))")
            assert name.startswith("dm-") and len(name) == 27, name
            room_button(olive, "bob").wait_for()
            assert page.evaluate("document.activeElement.id") == "text"

            room_button(bob, "olive").wait_for()  # live, from the `invited` frame
            bob.page.wait_for_selector("#alert[data-kind=notice]:has-text('olive started a direct conversation with you.')")
            assert bob.page.locator("#dm-list .room-button").count() == 1
            for chat in (olive, bob):
                assert "dm-" not in chat.page.inner_text("#sidebar")
                assert chat.page.locator("#dm-list .lock").count() == 0
            wait_joined(bob, name)  # the page joins the room it was added to by itself
            olive.send("hi bob, just us")
            room_button(bob, "olive").locator(".badge:text-is('1')").wait_for()
            room_button(bob, "olive").click()
            bob.page.wait_for_selector("#room-title:text-is('olive')")
            bob.wait_message("hi bob, just us")
            bob.send("hi olive")
            olive.wait_message("hi olive")
            for chat in (olive, bob):  # a direct room's members are fixed
                for hidden in ("#leave", "#invite-form", "#topic-edit", "#room-lock"):
                    assert chat.page.locator(hidden).is_hidden(), hidden
                assert chat.page.locator("#members button").count() == 0
                assert chat.page.locator("#members select").count() == 0
                chat.page.wait_for_selector("#members li[data-user=olive]")
                chat.page.wait_for_selector("#members li[data-user=bob]")
            screenshot(bob.page, "dm-desktop")
            assert not olive.errors and not bob.errors, olive.errors + bob.errors

        await in_browser(scenario)

    async def test_an_invited_member_sees_a_private_room_live_and_loses_it_when_removed(self):
        """olive creates a private room in the dialog (a taken name and a name kept for direct rooms are
        refused next to the name field); bob, added from the members panel, sees it appear with its lock at
        once; removed, his page drops it, says so, and receives none of its later messages."""
        def scenario(browser):
            olive = signed_up(browser, self.server.url, "olive")
            bob = signed_up(browser, self.server.url, "bob")
            bob.join("lobby")
            olive.join("lobby")
            create_room(olive, "plans", private=True, topic="launch <b>plans</b>")
            page = olive.page
            assert page.locator("#room-lock").is_visible()
            assert page.inner_text("#room-topic") == "launch <b>plans</b>"
            assert room_button(olive, "plans").locator(".lock").count() == 1
            for taken, why in (("plans", 'The name "plans" is taken'), ("dm-0123456789abcdef01234567", "kept for direct rooms")):
                page.click("#new-room")
                page.fill("#create-name", taken)
                page.click("#create-submit")
                page.wait_for_selector(f"#error-name:has-text('{why}')")
                assert page.evaluate("document.activeElement.id") == "create-name"
                page.keyboard.press("Escape")
                page.wait_for_selector("#create-dialog", state="hidden")

            invite(olive, "bob")
            room_button(bob, "plans").wait_for()  # live: the `invited` frame
            assert room_button(bob, "plans").locator(".lock").count() == 1
            bob.page.wait_for_selector("#alert[data-kind=notice]:has-text('olive added you to plans.')")
            room_button(bob, "plans").click()
            bob.page.wait_for_selector("#room-title:text-is('plans')")
            assert bob.page.locator("#room-lock").is_visible()
            assert bob.page.inner_text("#room-topic") == "launch <b>plans</b>"
            olive.send("secret plan 1")
            bob.wait_message("secret plan 1")
            olive.page.wait_for_selector("#members li[data-user=bob][data-online=true]")
            screenshot(olive.page, "private-room-desktop")

            olive.page.once("dialog", lambda dialog: dialog.accept())
            olive.page.click("#members li[data-user=bob] button:text-is('Remove')")
            olive.page.wait_for_selector("#members li[data-user=bob]", state="detached")
            bob.page.wait_for_selector(".room-button:has-text('plans')", state="detached")
            bob.page.wait_for_selector("#alert[data-kind=notice]:has-text('You were removed from plans.')")
            assert bob.page.inner_text("#room-title") != "plans"
            olive.send("secret plan 2")
            olive.message("secret plan 2").locator(".state.sent").wait_for()
            # A later message in a room both share: on bob's socket, anything of "plans" would come before it.
            room_button(olive, "lobby").click()
            olive.send("back in the lobby")
            room_button(bob, "lobby").click()
            bob.wait_message("back in the lobby")
            assert not [f for f in bob.received if "secret plan 2" in json.dumps(f)]
            assert "secret plan 2" not in bob.page.content()
            assert not olive.errors and not bob.errors, olive.errors + bob.errors

        await in_browser(scenario)

    async def test_an_outsiders_page_never_shows_a_private_rooms_messages(self):
        """mallory, no member of olive's private room, finds it nowhere: not in her sidebar or the room
        directory, not by its name in the join box, in the address, or typed into the address later (each time
        the server's refusal is shown and the room is not kept); her page never asks for its history and
        never receives a word of it."""
        def scenario(browser):
            olive = signed_up(browser, self.server.url, "olive")
            create_room(olive, "vault", private=True)
            olive.send("the vault code is 1234")
            olive.message("the vault code is 1234").locator(".state.sent").wait_for()
            mallory = signed_up(browser, self.server.url, "mallory")
            asked: list[str] = []
            mallory.page.on("request", lambda request: asked.append(request.url))
            page = mallory.page
            page.wait_for_selector("#directory-status:has-text('No rooms yet')")  # "vault" is not listed
            assert page.locator("#directory-list li").count() == 0

            def refused():
                page.wait_for_selector("#alert[data-kind=error]:has-text('You cannot open \"vault\"')")
                assert "private" in page.inner_text("#alert-text"), page.inner_text("#alert-text")
                page.click("#alert-close")
                assert page.locator("#room-list li, #dm-list li").count() == 0
                assert page.inner_text("#room-title") == "Rooms"

            page.fill("#join-room", "vault")
            page.press("#join-room", "Enter")
            refused()
            page.evaluate("location.hash = 'vault'")  # typed into the address
            refused()
            page.evaluate("history.replaceState(null, '', '#vault')")
            page.reload()  # opened from a link or a bookmark
            mallory.signed_in()
            refused()
            assert page.evaluate("location.hash") == ""
            olive.send("the new code is 5678")
            olive.message("the new code is 5678").locator(".state.sent").wait_for()
            mallory.join("lobby")
            olive.join("lobby")
            olive.send("lobby after the vault")
            mallory.wait_message("lobby after the vault")
            assert texts_received(mallory, "vault") == []
            assert not [f for f in mallory.received if f.get("room") == "vault" and f.get("type") != "error"]
            assert not [url for url in asked if "/api/rooms/vault" in url], asked
            assert "1234" not in page.content() and "5678" not in page.content()
            forbidden = [f for f in mallory.received if f.get("type") == "error"]
            assert [f["code"] for f in forbidden] == ["forbidden"] * 3, forbidden
            assert not mallory.errors, mallory.errors

        await in_browser(scenario)

    async def test_the_members_panel_shows_roles_and_only_the_allowed_buttons(self):
        """In a private room, the owner sees every member's role as a choice and Remove, adds people as member
        or moderator, and edits the topic; a moderator adds members and removes members, nothing more; a member
        sees the roles and no button but Leave. A role change reaches the others' panels and buttons live."""
        def scenario(browser):
            olive = signed_up(browser, self.server.url, "olive")
            bob = signed_up(browser, self.server.url, "bob")
            carol = signed_up(browser, self.server.url, "carol")
            create_room(olive, "crew", private=True)
            invite(olive, "bob", "moderator")
            invite(olive, "carol")
            for chat in (bob, carol):
                room_button(chat, "crew").click()
                chat.page.wait_for_selector("#room-title:text-is('crew')")
                chat.page.wait_for_selector("#members li[data-user=carol][data-role=member]")

            def row(chat, user):
                return chat.page.locator(f"#members li[data-user={user}]")

            # The owner: roles as choices and Remove for the others; her own row has no control.
            assert row(olive, "olive").get_attribute("data-role") == "owner"
            assert row(olive, "olive").locator("button, select").count() == 0
            assert row(olive, "olive").locator(".role").inner_text() == "owner"
            for user, role in (("bob", "moderator"), ("carol", "member")):
                assert row(olive, user).locator("select").input_value() == role
                assert row(olive, user).locator("button:text-is('Remove')").count() == 1
            assert olive.page.locator("#invite-form").is_visible() and olive.page.locator("#invite-role").is_visible()
            assert olive.page.locator("#topic-edit").is_visible() and olive.page.locator("#leave").is_visible()
            # The moderator: adds members (not moderators) and removes members; no roles to change.
            assert bob.page.locator("#members select").count() == 0
            assert [row(bob, u).locator("button").count() for u in ("olive", "bob", "carol")] == [0, 0, 1]
            assert [row(bob, u).locator(".role").inner_text() for u in ("olive", "bob", "carol")] == ["owner", "moderator", "member"]
            assert bob.page.locator("#invite-form").is_visible() and bob.page.locator("#invite-role").is_hidden()
            assert bob.page.locator("#topic-edit").is_hidden()
            # The member: roles to read, Leave, nothing else.
            assert carol.page.locator("#members button, #members select").count() == 0
            assert carol.page.locator("#invite-form").is_hidden() and carol.page.locator("#topic-edit").is_hidden()
            assert carol.page.locator("#leave").is_visible()

            # olive makes carol a moderator, with the keyboard: carol's page gives her the moderator's buttons.
            row(olive, "carol").locator("select").focus()
            olive.page.keyboard.press("ArrowDown")  # member → moderator
            row(carol, "carol").locator(".role:text-is('moderator')").wait_for()
            carol.page.wait_for_selector("#invite-form:not([hidden])")
            row(carol, "bob").locator("button:text-is('Remove')").wait_for()
            row(bob, "carol").locator(".role:text-is('moderator')").wait_for()
            # The hand-over: bob becomes the owner, olive a moderator, and the buttons follow on every page.
            olive.page.once("dialog", lambda dialog: dialog.accept())
            row(olive, "bob").locator("select").select_option("owner")
            row(olive, "olive").locator(".role:text-is('moderator')").wait_for()
            olive.page.wait_for_selector("#topic-edit", state="hidden")
            bob.page.wait_for_selector("#topic-edit:not([hidden])")
            row(bob, "olive").locator("select").wait_for()
            row(carol, "bob").locator(".role:text-is('owner')").wait_for()
            assert row(carol, "bob").locator("button").count() == 0  # nobody removes the owner
            for chat in (olive, bob, carol):
                assert not chat.errors, chat.errors

        await in_browser(scenario)

    async def test_a_topic_edit_shows_live_to_another_member_at_phone_width(self):
        """The owner edits the topic in the header (markup in it stays text); a member on a phone sees it at
        once in the room's header, without an Edit button; the members panel opens from the header by
        keyboard there."""
        def scenario(browser):
            olive = signed_up(browser, self.server.url, "olive")
            bob = signed_up(browser, self.server.url, "bob", viewport=PHONE)
            create_room(olive, "ops", private=True)
            invite(olive, "bob")
            bob.page.click("#rooms-toggle")
            room_button(bob, "ops").click()
            bob.page.wait_for_selector("#room-title:text-is('ops')")
            assert bob.page.locator("#room-topic").is_hidden() and bob.page.locator("#topic-edit").is_hidden()
            assert bob.page.locator("#room-lock").is_visible()

            topic = "deploy <img src=x onerror=window.__xss=1> on friday"
            olive.page.click("#topic-edit")
            assert olive.page.evaluate("document.activeElement.id") == "topic-input"
            olive.page.keyboard.type(topic)
            olive.page.keyboard.press("Enter")
            olive.page.wait_for_selector("#topic-form", state="hidden")
            shown = "(topic) => document.getElementById('room-topic').textContent === topic"
            olive.wait_until(shown, topic)
            bob.wait_until(shown, topic)  # live: the `room` frame
            assert bob.page.locator("#room-topic").is_visible()
            assert bob.page.locator("#room-topic img").count() == 0 and bob.page.evaluate("window.__xss") is None
            assert bob.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

            # On a phone the panel waits behind its button; Enter on it shows the members.
            assert bob.page.locator("#room-members").is_hidden()
            bob.page.focus("#members-toggle")
            bob.page.keyboard.press("Enter")
            bob.page.wait_for_selector("#room-members:not([hidden]) li[data-user=olive][data-role=owner]")
            assert bob.page.get_attribute("#members-toggle", "aria-expanded") == "true"
            screenshot(bob.page, "private-room-phone")
            # Escape leaves the topic form unchanged.
            olive.page.click("#topic-edit")
            olive.page.keyboard.type(" and never")
            olive.page.keyboard.press("Escape")
            olive.page.wait_for_selector("#topic-form", state="hidden")
            assert olive.page.inner_text("#room-topic") == topic
            assert olive.page.evaluate("document.activeElement.id") == "topic-edit"
            assert not olive.errors and not bob.errors, olive.errors + bob.errors

        await in_browser(scenario)
