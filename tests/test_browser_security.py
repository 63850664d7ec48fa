"""The page's own security in a real browser: it works under its Content-Security-Policy, it tells users
apart by id (not by a username that can change hands), and it refuses room names a URL would swallow."""

from __future__ import annotations

from urllib.parse import urlsplit

from twisted.trial.unittest import TestCase

from chatd.web.site import CONTENT_SECURITY_POLICY
from tests.browser import PASSWORD, ChatPage, in_browser, require_browser, tiny_png, two_in_lobby
from tests.harness import ROOT, start_server

# Installed before the page's scripts: every CSP violation the document reports.
VIOLATIONS = """
    window.__violations = [];
    document.addEventListener('securitypolicyviolation',
        (event) => window.__violations.push(`${event.effectiveDirective} ${event.blockedURI}`));
"""

RENAME = """async (name) => {
    const session = JSON.parse(sessionStorage.getItem('chatd.session'));
    const response = await fetch(`/api/users/${session.user.id}`, {
        method: 'PATCH',
        headers: { Authorization: `Bearer ${session.token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ username: name }),
    });
    return response.status;
}"""


def classes(locator) -> list[str]:
    return locator.get_attribute("class").split()


class PageSecurityTests(TestCase):
    timeout = 180

    async def setUp(self):
        require_browser()
        self.server = await start_server(self)

    async def test_the_page_works_under_its_content_security_policy(self):
        """Signing in, chatting both ways and sharing an image raise no CSP violation and no console error;
        the page, its scripts, stylesheet and icon come with the CSP, nosniff and DENY framing; and the
        policy really is enforced (an injected inline script or style attribute is blocked)."""
        static: dict[str, dict] = {}

        def record(response):
            path = urlsplit(response.url).path
            if response.url.startswith(self.server.url) and not path.startswith(("/api/", "/ws")):
                static[path] = response.headers

        def scenario(browser):
            alice, bob = two_in_lobby(browser, self.server.url, init_script=VIOLATIONS)
            for page in (alice, bob):
                page.page.on("response", record)
            alice.page.reload()  # the page's own files again, now recorded
            alice.signed_in()
            alice.page.wait_for_selector("#room[data-joined=true]")
            alice.send("hello bob")
            bob.wait_message("hello bob")
            bob.send("hi alice")
            alice.wait_message("hi alice")
            alice.page.set_input_files("#file-input", files=[{"name": "red.png", "mimeType": "image/png",
                                                              "buffer": tiny_png()}])
            for page in (alice, bob):  # the preview is a blob: image (img-src blob:)
                page.wait_until("""() => [...document.querySelectorAll("#message-list .file img")]
                    .some((img) => img.complete && img.naturalWidth === 24 && img.src.startsWith('blob:'))""")
            for page in (alice, bob):
                assert page.page.evaluate("window.__violations") == [], page.page.evaluate("window.__violations")
                assert not page.errors and not page.console_errors, page.errors + page.console_errors

            # The policy is enforced, not merely sent: inline script and inline style are refused.
            alice.page.evaluate("""() => {
                const script = document.createElement('script');
                script.textContent = 'window.__inline = 1';
                document.body.append(script);
                document.getElementById('me').setAttribute('style', 'color: red');
            }""")
            alice.wait_until("window.__violations.length === 2")
            assert alice.page.evaluate("window.__inline") is None
            directives = sorted(v.split()[0] for v in alice.page.evaluate("window.__violations"))
            assert directives == ["script-src-elem", "style-src-attr"], directives

        await in_browser(scenario)
        # Every module the chat page loads; apidocs.js belongs to /api/docs (tests/test_openapi.py checks it).
        modules = sorted(f"/js/{module.name}" for module in (ROOT / "www" / "js").glob("*.js")
                         if module.name != "apidocs.js")
        for path in ("/", "/css/chat.css", *modules):
            self.assertIn(path, static)
            headers = static[path]
            self.assertEqual(headers.get("content-security-policy"), CONTENT_SECURITY_POLICY, path)
            self.assertEqual(headers.get("x-content-type-options"), "nosniff", path)
            self.assertEqual(headers.get("x-frame-options"), "DENY", path)
        # Chromium does not report its favicon fetch to Playwright: the page's image, asked for directly.
        icon = await self.server.client().request("GET", "/favicon.svg")
        self.assertEqual((icon.status, icon.header("content-type")), (200, "image/svg+xml"))
        self.assertEqual(icon.header("content-security-policy"), CONTENT_SECURITY_POLICY)
        self.assertEqual((icon.header("x-content-type-options"), icon.header("x-frame-options")), ("nosniff", "DENY"))

    async def test_a_renamed_user_keeps_their_messages_and_the_ban_finds_them_by_id(self):
        """bob renames himself to bob2 and a newcomer registers "bob": bob's messages stay his own (by id),
        the newcomer's are not his, and the admin's ban from bob's old message bans bob2, not the newcomer."""
        def scenario(browser):
            alice, bob = two_in_lobby(browser, self.server.url)  # alice registered first: the admin
            bob.send("from bob")
            alice.wait_message("from bob")
            bob.message("from bob").locator(".state.sent").wait_for()
            assert bob.page.evaluate(RENAME, "bob2") == 200
            bob.page.reload()
            bob.signed_in()
            bob.page.wait_for_selector("#me:text-is('bob2')")
            bob.page.wait_for_selector("#room[data-joined=true]")

            newcomer = ChatPage(browser, self.server.url)
            newcomer.register("bob", email="new-bob@example.com")  # the old name, free again
            newcomer.signed_in()
            newcomer.join("lobby")
            newcomer.send("i am the new bob")
            bob.send("after the rename")
            for text in ("i am the new bob", "after the rename"):
                alice.wait_message(text)
                bob.wait_message(text)
            bob.message("after the rename").locator(".state.sent").wait_for()
            for text in ("from bob", "after the rename"):
                assert "own" in classes(bob.message(text)), text
                assert bob.message(text).locator("button:text-is('Edit')").count() == 1, text
            assert "own" not in classes(bob.message("i am the new bob"))
            assert bob.message("i am the new bob").locator("button:text-is('Edit')").count() == 0
            assert "own" in classes(newcomer.message("i am the new bob"))
            assert "own" not in classes(newcomer.message("from bob"))

            alice.page.once("dialog", lambda dialog: dialog.accept("spamming"))
            alice.act("from bob", "Ban")
            bob.page.wait_for_selector("#auth-error:has-text('banned')")
            # The newcomer holding the name "bob" is untouched: still connected and still heard.
            newcomer.send("still here")
            alice.wait_message("still here")
            newcomer.message("still here").locator(".state.sent").wait_for()
            assert newcomer.page.locator("#chat").is_visible()
            assert newcomer.page.locator("#connection").get_attribute("data-state") == "online"
            assert not alice.errors and not bob.errors and not newcomer.errors, alice.errors + bob.errors

        await in_browser(scenario)
        http = self.server.client()
        bob2 = await http.request("POST", "/api/auth/login", {"username": "bob2", "password": PASSWORD})
        newcomer = await http.request("POST", "/api/auth/login", {"username": "bob", "password": PASSWORD})
        self.assertEqual((bob2.status, newcomer.status), (403, 200), (bob2, newcomer))

    async def test_join_refuses_dot_and_dot_dot(self):
        """"." and ".." (which a URL would read as path steps) are refused in the join form with a clear
        message, and no room is added."""
        def scenario(browser):
            dora = ChatPage(browser, self.server.url)
            dora.register("dora")
            dora.signed_in()
            for name in (".", ".."):
                dora.page.fill("#join-room", name)
                dora.page.press("#join-room", "Enter")
                dora.page.wait_for_selector(f"#join-error:has-text('\"{name}\" cannot be a room name')")
                assert dora.page.locator("#room-list li").count() == 0
            dora.join("lobby")  # the form still works, and clears the message
            assert dora.page.locator("#join-error").inner_text() == ""
            assert not dora.errors

        await in_browser(scenario)
