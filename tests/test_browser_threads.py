"""Threads and reactions on the page (issue 13), in Debian's Chromium against a real chatd: the Reply button
opens a thread beside the room, replies go there (not into the room's list) and reach the other reader live,
with the root's reply count in the timeline; on a desktop the thread has its own column and leaves the room's
header usable; "Earlier replies" pages back; a reply edited, deleted or reacted to while its thread is open
changes live there; the reaction bar toggles an emoji by click (the six common ones and any typed one), with who
reacted in its title, live on both pages."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from chatd.ratelimit import Rate
from tests.browser import PHONE, ChatPage, in_browser, require_browser, screenshot, signed_up
from tests.harness import start_server
from tests.wsclient import joined


def reaction(chat: ChatPage, text: str, emoji: str):
    """The toggle of ``emoji`` under the room's message ``text``."""
    return chat.message(text).locator(f".reaction[data-emoji='{emoji}']")


class ThreadsAndReactionsPageTests(TestCase):
    timeout = 240

    async def setUp(self):
        require_browser()
        self.server = await start_server(self, socket_rate=Rate(0, 0))  # unlimited: a test fills a thread
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

    async def test_on_a_desktop_the_thread_leaves_the_header_usable(self):
        """With a thread open on a desktop, the room's Members and Leave buttons stay visible beside it and take
        clicks: Members brings the members panel back (closing the thread, which stood in its place), and
        Leave leaves the room with the thread open."""

        def scenario(browser):
            ann = signed_up(browser, self.server.url, "ann")
            ann.join("lobby")
            ann.send("Plans for Friday?")
            ann.wait_message("Plans for Friday?")

            def open_thread():
                ann.message("Plans for Friday?").hover()
                ann.message("Plans for Friday?").locator("button[data-focus=reply]").click()
                ann.page.wait_for_selector("#thread:not([hidden])")

            def uncovered(selector):
                """The button is on screen, outside the thread panel, and on top where it is drawn."""
                box, panel = ann.page.locator(selector).bounding_box(), ann.page.locator("#thread").bounding_box()
                assert box and box["width"] > 0 and box["y"] >= 0, (selector, box)
                assert box["y"] + box["height"] <= panel["y"] or box["x"] + box["width"] <= panel["x"], (box, panel)
                assert ann.page.evaluate("([s, x, y]) => document.elementFromPoint(x, y) === document.querySelector(s)",
                                         [selector, box["x"] + box["width"] / 2, box["y"] + box["height"] / 2]), selector

            open_thread()
            assert ann.page.is_hidden("#room-members")  # the thread stands where the members were
            assert ann.page.get_attribute("#members-toggle", "aria-expanded") == "false"
            uncovered("#members-toggle")
            uncovered("#leave")
            messages, panel = ann.page.locator("#messages").bounding_box(), ann.page.locator("#thread").bounding_box()
            assert messages["x"] + messages["width"] <= panel["x"] + 1, (messages, panel)  # side by side
            ann.page.click("#members-toggle")
            ann.page.wait_for_selector("#thread", state="hidden")
            ann.page.wait_for_selector("#room-members:not([hidden]) li[data-user='ann']")
            assert ann.page.get_attribute("#members-toggle", "aria-expanded") == "true"
            open_thread()
            ann.page.click("#leave")
            ann.wait_until("!document.querySelector(\".room-button[data-room='lobby']\")")
            assert ann.sent_of("leave") == [{"type": "leave", "room": "lobby"}], ann.sent_of("leave")
            assert not ann.errors, ann.errors

        await in_browser(scenario)

    async def test_a_room_whose_latest_page_is_replies_shows_their_root(self):
        """The latest 50 messages of lobby are all replies to bob's question: they stay out of ann's list, which
        then has room to spare, so the older page loads by itself and the question shows with "55 replies"."""
        bob = await joined(self.server.url, (await self.server.client().register("bob"))["token"], test=self)
        bob.send({"type": "message", "room": "lobby", "text": "Favourite colours?", "client_id": "q"})
        await bob.next("ack", timeout=30)
        for n in range(55):
            bob.send({"type": "message", "room": "lobby", "text": f"colour {n}", "client_id": f"r-{n}", "reply_to": 1})
        for _ in range(55):
            await bob.next("ack", timeout=60)

        def scenario(browser):
            ann = signed_up(browser, self.server.url, "ann")
            ann.join("lobby")
            ann.message("Favourite colours?").locator(".thread-link", has_text="55 replies").wait_for()
            assert ann.page.locator("#message-list .message").count() == 1
            assert not ann.errors, ann.errors

        await in_browser(scenario)

    async def test_a_found_reply_opens_its_thread_and_earlier_replies_page_back(self):
        """bob's question has 60 replies (more than a page of 50) and 60 messages came after. ann searches
        the newest reply and picks it: lobby opens at its latest messages (no replies among them) with the
        thread beside it, the latest 50 replies in order and the found one focused; "Earlier replies" adds
        the first 10 above: all 60 in order, none twice, and the button goes."""
        bob = await joined(self.server.url, (await self.server.client().register("bob"))["token"], test=self)
        bob.send({"type": "message", "room": "lobby", "text": "Favourite numbers?", "client_id": "q"})
        await bob.next("ack", timeout=30)  # stored before its replies name it
        frames = [{"text": f"answer {n}", "client_id": f"r-{n}", "reply_to": 1} for n in range(60)]
        frames += [{"text": f"chatter {n}", "client_id": f"c-{n}"} for n in range(60)]
        for frame in frames:
            bob.send({"type": "message", "room": "lobby", **frame})
        for _ in frames:
            await bob.next("ack", timeout=60)

        def scenario(browser):
            ann = signed_up(browser, self.server.url, "ann")
            ann.join("lobby")
            ann.wait_message("chatter 59")
            ann.page.fill("#search-q", "answer 59")
            ann.page.press("#search-q", "Enter")
            ann.page.locator("#search-results .search-result").first.click()
            ann.page.wait_for_selector("#thread:not([hidden])")
            ann.wait_until("document.activeElement && document.activeElement.closest('#thread-list')"
                           " && document.activeElement.dataset.seq === '61'")
            assert "found" in ann.page.get_attribute("#thread-list .message[data-seq='61']", "class")
            assert ann.page.locator("#room-title").inner_text() == "lobby"
            assert ann.message("answer 59").count() == 0  # replies stay in the thread
            texts = ann.page.locator("#thread-list .message .text")
            assert texts.all_inner_texts() == ["Favourite numbers?"] + [f"answer {n}" for n in range(10, 60)]
            assert ann.page.locator("#thread-title").inner_text() == "Thread (60 replies)"
            ann.page.click("#thread-older")
            ann.wait_until("document.querySelectorAll('#thread-list .message').length === 61")
            assert texts.all_inner_texts() == ["Favourite numbers?"] + [f"answer {n}" for n in range(60)]
            seqs = ann.page.eval_on_selector_all("#thread-list .message", "items => items.map((i) => i.dataset.seq)")
            assert seqs == [str(n) for n in range(1, 62)], seqs
            ann.page.wait_for_selector("#thread-older", state="hidden")
            assert not ann.errors, ann.errors

        await in_browser(scenario)

    async def test_a_reply_edited_and_deleted_while_its_thread_is_open(self):
        """bob edits, then deletes, his reply from ann's open thread: her panel shows the new text marked
        "(edited)", then "This message was deleted." in its place; the root keeps counting it ("2 replies")."""

        def scenario(browser):
            ann = signed_up(browser, self.server.url, "ann")
            bob = signed_up(browser, self.server.url, "bob")
            ann.join("lobby")
            bob.join("lobby")
            ann.send("Who brings snacks?")
            bob.wait_message("Who brings snacks?")
            bob.message("Who brings snacks?").hover()
            bob.message("Who brings snacks?").locator("button[data-focus=reply]").click()
            for text in ("I will bring chips", "and dip"):
                bob.page.fill("#thread-text", text)
                bob.page.press("#thread-text", "Enter")
                bob.page.locator("#thread-list .message .text", has_text=text).wait_for()
            ann.message("Who brings snacks?").locator(".thread-link", has_text="2 replies").click()
            ann_reply = ann.page.locator("#thread-list .message").filter(has=ann.page.locator(".text", has_text="chips"))
            ann_reply.wait_for()
            reply = bob.page.locator("#thread-list .message").filter(has=bob.page.locator(".text", has_text="chips"))
            reply.hover()
            bob.page.once("dialog", lambda dialog: dialog.accept("I will bring crisps"))
            reply.locator("button", has_text="Edit").click()
            edited = ann.page.locator("#thread-list .message").filter(has=ann.page.locator(".text", has_text="crisps"))
            edited.locator(".edited").wait_for()
            assert ann.page.locator("#thread-list .message .text", has_text="chips").count() == 0
            reply = bob.page.locator("#thread-list .message").filter(has=bob.page.locator(".text", has_text="crisps"))
            reply.hover()
            bob.page.once("dialog", lambda dialog: dialog.accept())
            reply.locator("button", has_text="Delete").click()
            ann.page.locator("#thread-list .message.deleted .text", has_text="This message was deleted.").wait_for()
            assert ann.page.locator("#thread-list .message .text", has_text="crisps").count() == 0
            texts = ann.page.locator("#thread-list .message .text").all_inner_texts()
            assert texts == ["Who brings snacks?", "This message was deleted.", "and dip"], texts
            assert ann.page.locator("#thread-title").inner_text() == "Thread (2 replies)"
            ann.message("Who brings snacks?").locator(".thread-link", has_text="2 replies").wait_for()
            assert not ann.errors and not bob.errors, (ann.errors, bob.errors)

        await in_browser(scenario)

    async def test_reactions_on_a_reply_in_the_thread_panel(self):
        """ann reacts 🎉 to bob's reply from the thread panel: bob's open thread shows it live with her name;
        his click on it adds his (count 2); ann's click takes hers back (count 1, only bob named)."""

        def scenario(browser):
            ann = signed_up(browser, self.server.url, "ann")
            bob = signed_up(browser, self.server.url, "bob")
            ann.join("lobby")
            bob.join("lobby")
            ann.send("The build is green")
            bob.wait_message("The build is green")
            bob.message("The build is green").hover()
            bob.message("The build is green").locator("button[data-focus=reply]").click()
            bob.page.fill("#thread-text", "Finally!")
            bob.page.press("#thread-text", "Enter")
            ann.message("The build is green").locator(".thread-link", has_text="1 reply").click()

            def in_thread(chat, emoji):
                reply = chat.page.locator("#thread-list .message").filter(has=chat.page.locator(".text", has_text="Finally!"))
                return reply, reply.locator(f".reaction[data-emoji='{emoji}']")

            reply, _ = in_thread(ann, "🎉")
            reply.hover()
            reply.locator(".react-add").click()
            reply.locator(".react-choice[data-emoji='🎉']").click()
            _, toggle = in_thread(bob, "🎉")
            toggle.locator(".count", has_text="1").wait_for()
            assert toggle.get_attribute("title") == "Reacted 🎉 by ann"
            assert toggle.get_attribute("aria-pressed") == "false"
            toggle.click()
            _, mine = in_thread(ann, "🎉")
            mine.locator(".count", has_text="2").wait_for()
            mine.click()
            toggle.locator(".count", has_text="1").wait_for()
            bob.wait_until("document.querySelector(\"#thread-list .reaction[data-emoji='🎉']\").title === 'Reacted 🎉 by bob'")
            sent = ann.sent_of("react")
            assert [frame["on"] for frame in sent] == [True, False] and sent[0]["seq"] == 2, sent
            assert bob.message("The build is green").locator(".reaction").count() == 0  # the root has none
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
