"""A socket acts with its user's current site role (SPEC.md: PATCH /api/users/{id} changes roles; a site
admin may act in any room): a user made admin, or no longer admin, is treated so by their sockets already
open, as by their next REST request, without reconnecting. Unit tests on the chat harness with the
CachedStore chatd runs on (its copy of a changed user is dropped by the change)."""

from __future__ import annotations

from chatd.accounts.users import Users
from chatd.storage.cached import CachedStore
from chatd.storage.memory import MemoryStore
from tests.chatharness import ChatTestCase, ThreadlessHasher, fired


class AdminStandingTests(ChatTestCase):
    """root (the first user, admin) and ada have sockets open; olive owns the private rooms ``team`` and
    ``plans``, which neither root nor ada belongs to."""

    def make_store(self):
        return CachedStore(MemoryStore(), self.clock)

    def setUp(self):
        super().setUp()
        self.root, self.ada, self.olive = (self.chat.connect(name) for name in ("root", "ada", "olive"))
        for room in ("team", "plans"):
            fired(self.chat.catalog.create(self.who(self.olive), {"name": room, "visibility": "private"}))
        self.users = Users(self.store, ThreadlessHasher(), self.clock, self.chat.presence, self.chat.events)

    def who(self, conn):
        """The principal behind ``conn``'s token, as a REST request has it."""
        pending = self.chat.accounts.authenticate(conn.token)
        self.clock.advance(0)  # the cache fetches what it misses on the next turn
        return fired(pending)

    def join(self, conn, room: str) -> str:
        """``conn`` sends join: ``joined``, or the error's code."""
        before = len(conn.sent)
        self.chat.send(conn, type="join", room=room)
        self.clock.advance(0)
        [answer] = [f for f in conn.sent[before:] if f["type"] in ("joined", "error")]
        return answer["type"] if answer["type"] == "joined" else answer["code"]

    def test_a_user_made_admin_acts_as_admin_on_the_socket_already_open(self):
        """Before: ada's join of the private room is forbidden. root makes ada admin by PATCH; the same
        socket of ada's may now join it (as an admin may), and her REST requests see her as admin."""
        self.assertEqual(self.join(self.ada, "team"), "forbidden")
        fired(self.users.update_user(self.who(self.root), self.ada.user_id, {"role": "admin"}))
        self.assertTrue(self.who(self.ada).is_admin)
        self.assertEqual(self.join(self.ada, "team"), "joined")

    def test_an_admin_no_longer_admin_loses_it_on_the_socket_already_open(self):
        """root (admin) may join a private room from an open socket; once ada, made admin, takes root's role
        away, root's same socket is refused the other private room (forbidden), as a non-admin is."""
        self.assertEqual(self.join(self.root, "team"), "joined")
        fired(self.users.update_user(self.who(self.root), self.ada.user_id, {"role": "admin"}))
        fired(self.users.update_user(self.who(self.ada), self.root.user_id, {"role": "user"}))
        self.assertFalse(self.who(self.root).is_admin)
        self.assertEqual(self.join(self.root, "plans"), "forbidden")
