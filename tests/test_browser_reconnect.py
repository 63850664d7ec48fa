"""Reconnecting after an outage (issue 10): the page retries at once when the browser says it is online
again, when its tab becomes visible, or when the user asks ("Retry now"), and its backoff never grows past
5 s, so a server that came back is not left waiting for a 12 s timer."""

from __future__ import annotations

import time

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from chatd.storage.embedded import free_loopback_port
from tests.browser import ChatPage, in_browser, on_reactor, require_browser
from tests.harness import Server, start_server

# Installed before the page's scripts: the backoff always at its ceiling (the worst a user can draw), and
# every "reconnecting in N s" the page showed.
WORST_LUCK = """
    Math.random = () => 0.999;
    window.__delays = [];
    document.addEventListener('DOMContentLoaded', () => {
        new MutationObserver(() => {
            const shown = document.getElementById('connection').textContent.match(/in (\\d+) s/);
            if (shown) window.__delays.push(Number(shown[1]));
        }).observe(document.getElementById('connection'), { childList: true, characterData: true, subtree: true });
    });
"""

CAP_S = 5
BACK_WITHIN_S = 1.5


class ReconnectTests(TestCase):
    timeout = 240

    async def setUp(self):
        require_browser()
        self.port = free_loopback_port()  # fixed, so a restarted chatd is where the page reconnects
        self.server = await start_server(self, listen=[f"tcp:{self.port}:interface=127.0.0.1"])

    async def _stop(self) -> None:
        await self.server.stop()

    async def _start(self) -> None:
        self.server = Server(self.server.config)
        await self.server.start()
        self.addCleanup(lambda: defer.ensureDeferred(self.server.stop()))

    def _outage(self, dora: ChatPage, longest: int) -> None:
        """Stop the server until the page's backoff has reached ``longest`` seconds, then start it again."""
        seen = dora.page.evaluate("window.__delays.length")
        on_reactor(self._stop)
        dora.page.wait_for_selector("#connection[data-state=offline]")
        dora.wait_until(f"window.__delays.slice({seen}).some((delay) => delay >= {longest})", timeout=30_000)
        on_reactor(self._start)

    def _back_soon(self, dora: ChatPage, nudge) -> float:
        """How long the page takes to be connected again after ``nudge(page)``."""
        started = time.monotonic()
        nudge(dora.page)
        dora.wait_connected()
        return time.monotonic() - started

    async def test_the_page_reconnects_at_once_when_online_visible_or_asked_and_waits_at_most_5_s(self):
        """After outages long enough for the backoff to reach its ceiling, the page is connected again
        within 1.5 s of the browser's `online` event, of the tab becoming visible, and of a click on "Retry
        now" (shown while disconnected); the delay it announces never passes 5 s; and a message typed
        while offline is delivered once back."""
        def scenario(browser):
            dora = ChatPage(browser, self.server.url, init_script=WORST_LUCK)
            dora.register("dora")
            dora.signed_in()
            dora.join("lobby")

            self._outage(dora, CAP_S)  # 0.5 + 1 + 2 + 4 s of failures, then the ceiling
            dora.send("typed while offline")
            online = self._back_soon(dora, lambda page: page.evaluate("window.dispatchEvent(new Event('online'))"))
            print(f"reconnect: online {online:.2f} s", end=", ")
            dora.message("typed while offline").locator(".state.sent").wait_for()
            assert dora.page.locator("#retry").is_hidden()

            self._outage(dora, 4)
            visible = self._back_soon(dora, lambda page: page.evaluate(
                "document.dispatchEvent(new Event('visibilitychange'))"))
            print(f"visible {visible:.2f} s", end=", ")

            self._outage(dora, 4)
            assert dora.page.locator("#retry").is_visible()
            asked = self._back_soon(dora, lambda page: page.click("#retry"))
            return online, visible, asked, dora.page.evaluate("window.__delays")

        online, visible, asked, delays = await in_browser(scenario)
        print(f"retry now {asked:.2f} s, delays shown {delays}")
        for how, seconds in (("online", online), ("visible", visible), ("retry now", asked)):
            self.assertLess(seconds, BACK_WITHIN_S, f"{how}: connected {seconds:.2f} s later")
        self.assertLessEqual(max(delays), CAP_S, delays)
