"""Races between a socket's frames, the store and the socket closing (found in review, now pinned)."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

from twisted.internet.defer import Deferred

from chatd.chat import writer as writer_module
from chatd.storage.memory import MemoryStore
from chatd.storage.records import Message
from tests.chatharness import START, ChatTestCase, FakeConnection

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)


class HoldingStore(MemoryStore):
    """A MemoryStore whose history reads (those starting at seq 1) wait until released."""

    def __init__(self):
        super().__init__()
        self.held: list[tuple[Deferred, Deferred]] = []

    def get_messages(self, room, seqs):
        answer = super().get_messages(room, seqs)
        if seqs and min(seqs) == 1:
            held = Deferred()
            self.held.append((held, answer))
            return held
        return answer

    def release(self):
        for held, answer in self.held:
            answer.addCallback(held.callback)
        self.held = []


class RaceTests(ChatTestCase):
    def make_store(self):
        return HoldingStore()

    def open(self, conn):
        return self.chat.open(conn)

    def test_join_gets_every_message_stored_while_it_read_history(self):
        """Messages stored while a join read old history from the store all reach the joiner, once, in order."""
        self.successResultOf(self.store.insert_messages(
            [Message("lobby", seq, "u9", "old", T0, f"old {seq}") for seq in range(1, 201)]))
        self.successResultOf(self.store.advance_rooms({"lobby": (200, T0)}))  # as the writer would have
        conn = self.open(FakeConnection())
        self.chat.received(conn, b'{"type":"join","room":"lobby","since":0}', False)
        self.assertEqual(len(self.store.held), 1)  # reading 1..200 from the store
        for i in range(130):  # more than the room's cache holds
            self.chat.writer.submit("lobby", "u9", "other", f"new {i}", None)
        for _ in range(5):
            self.clock.advance(writer_module.BATCH_WINDOW)
        self.store.release()
        joined = [frame for frame in conn.sent if frame["type"] == "joined"][0]
        live = [frame["seq"] for frame in conn.sent if frame["type"] == "message"]
        self.assertEqual([m["seq"] for m in joined["history"]] + live, list(range(1, 331)))

    def test_refresh_finishing_after_close_leaves_nothing_behind(self):
        """A refresh still waiting when its socket closes neither re-registers it nor arms a timer."""
        waiting = Deferred()
        self.chat.auth.principals["t"] = waiting
        conn = self.open(FakeConnection())
        self.chat.received(conn, b'{"type":"refresh","token":"t"}', False)
        self.chat.closed(conn)
        waiting.callback(SimpleNamespace(user=SimpleNamespace(id=conn.user_id),
                                         claims=SimpleNamespace(jti="new", exp=START + 7200, iat=START, expires_at=T0)))
        self.assertEqual(self.registry.connections_with_token("new"), [])
        self.assertEqual([c for c in self.clock.getDelayedCalls() if c.active() and "close" in repr(c.func)], [])
        self.assertNotIn("refreshed", [frame["type"] for frame in conn.sent])
