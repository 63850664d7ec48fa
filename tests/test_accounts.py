"""Unit tests for chatd.accounts (auth, users, moderation): SPEC.md's auth and users rules on the in-memory store."""

from datetime import datetime, timezone

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from chatd.accounts.auth import Auth
from chatd.accounts.loginguard import LoginGuard
from chatd.accounts.moderation import Moderation
from chatd.accounts.tokens import TokenIssuer
from chatd.accounts.users import DELETED_AUTHOR, Users
from chatd.errors import ApiError, api_error
from chatd.ratelimit import KeyedRateLimiter, Rate
from chatd.storage.memory import MemoryStore
from chatd.storage.records import Message, StoreUnavailable

SECRET = b"k" * 32
PASSWORD = "correct horse"


class FakeHasher:
    """Threadless stand-in for PasswordHasher: same Deferred interface, no bcrypt; counts its hashes."""

    def __init__(self):
        self.hashes = 0

    def hash(self, password, key=""):
        self.hashes += 1
        return defer.succeed(b"h:" + password.encode())

    def verify(self, password, hashed, key=""):
        return defer.succeed(hashed is not None and hashed == b"h:" + password.encode())


class RecordingEvents:
    """Records the account events (chatd.chat.events) that would close or rename sockets."""

    def __init__(self):
        self.closed = []
        self.renames = []

    def token_revoked(self, jti):
        self.closed.append(("token", jti, 4001))

    def password_changed(self, user_id, before=None):
        self.closed.append(("user", user_id, 4001))

    def user_deleted(self, user_id):
        self.closed.append(("user", user_id, 4001))

    def user_banned(self, user_id):
        self.closed.append(("user", user_id, 4003))

    def user_renamed(self, user_id, username):
        self.renames.append((user_id, username))


class NobodyOnline:
    def is_online(self, user_id):
        return False

    def online_user_ids(self):
        return []


class AccountsTestCase(TestCase):
    """Builds Accounts on a MemoryStore, a Clock and generous rate limits."""

    account_rate = Rate(100, 100)

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.store = MemoryStore()
        self.sockets = RecordingEvents()
        self.hasher = FakeHasher()
        self.auth = Auth(self.store, self.hasher, TokenIssuer(self.clock, 3600, SECRET), self.clock,
                         KeyedRateLimiter(Rate(2, 3), self.clock), LoginGuard(self.account_rate, self.clock),
                         NobodyOnline(), self.sockets)
        self.users = Users(self.store, self.hasher, self.clock, NobodyOnline(), self.sockets)
        self.moderation = Moderation(self.store, self.sockets)

    async def register(self, username, password=PASSWORD):
        return await self.auth.register(
            {"username": username, "email": f"{username.lower()}@example.com", "password": password}
        )

    async def principal(self, session):
        return await self.auth.authenticate(session["token"])

    async def setUpUsers(self):
        self.admin = await self.principal(await self.register("admin"))
        self.alice = await self.principal(await self.register("alice"))
        self.bob = await self.principal(await self.register("bob"))

    async def assertApiError(self, awaitable, status, code):
        """``awaitable`` fails with an ApiError of this status and code; returns the error."""
        try:
            await awaitable
        except ApiError as error:
            self.assertEqual((error.status, error.code), (status, code), error.message)
            return error
        self.fail(f"expected ApiError {status} {code}")


class RegisterTests(AccountsTestCase):
    """``POST /api/auth/register``."""

    async def test_first_user_is_admin(self):
        """The first user registered is admin, the second a plain user; tokens work and expire a TTL later."""
        first = await self.register("alice")
        second = await self.register("bob")
        self.assertEqual((first["user"]["role"], second["user"]["role"]), ("admin", "user"))
        self.assertEqual((await self.principal(second)).user.username, "bob")
        self.assertEqual(first["expires_at"], "2023-11-14T23:13:20.000Z")

    async def test_user_view_has_no_hash(self):
        """The returned user has SPEC.md's fields only: no password hash."""
        session = await self.register("alice")
        self.assertEqual(set(session["user"]), {"id", "username", "email", "role", "created_at", "online"})

    async def test_duplicate_username_case_insensitive(self):
        """``Alice`` after ``alice`` is 409 naming ``username``."""
        await self.register("alice")
        error = await self.assertApiError(
            self.auth.register({"username": "ALICE", "email": "other@example.com", "password": PASSWORD}),
            409, "conflict",
        )
        self.assertEqual(error.fields, {"username": "already taken"})

    async def test_duplicate_email_case_insensitive(self):
        """The same email in another case is 409 naming ``email``."""
        await self.register("alice")
        error = await self.assertApiError(
            self.auth.register({"username": "alice2", "email": "ALICE@example.com", "password": PASSWORD}),
            409, "conflict",
        )
        self.assertEqual(error.fields, {"email": "already taken"})

    async def test_invalid_body(self):
        """An operator object instead of a string is 400 before anything is stored."""
        await self.assertApiError(
            self.auth.register({"username": {"$ne": ""}, "email": "a@b.co", "password": PASSWORD}),
            400, "invalid_request",
        )
        self.assertEqual(len(await self.store.list_users(10)), 0)


class LoginTests(AccountsTestCase):
    """``POST /api/auth/login``."""

    async def test_by_username_or_email_any_case(self):
        """Username and email both log in, in any letter case."""
        await self.register("Alice")
        for body in [{"username": "alice"}, {"username": "ALICE"}, {"email": "ALICE@Example.com"}]:
            session = await self.auth.login(dict(body, password=PASSWORD))
            self.assertEqual((await self.principal(session)).user.username, "Alice")

    async def test_wrong_password_and_unknown_user_look_alike(self):
        """A wrong password and an unknown user get the same 401 message."""
        await self.register("alice")
        wrong = await self.assertApiError(
            self.auth.login({"username": "alice", "password": "wrong password"}), 401, "unauthorized"
        )
        unknown = await self.assertApiError(
            self.auth.login({"username": "nobody", "password": PASSWORD}), 401, "unauthorized"
        )
        self.assertEqual(wrong.message, unknown.message)

    async def test_banned_user(self):
        """A banned user cannot log in (403 with the reason) and their old token is 403."""
        await self.register("root")  # the first user, the admin
        session = await self.register("alice")
        await self.store.update_user(session["user"]["id"], {"banned": True, "ban_reason": "spam"})
        error = await self.assertApiError(
            self.auth.login({"username": "alice", "password": PASSWORD}), 403, "forbidden"
        )
        self.assertIn("spam", error.message)
        await self.assertApiError(self.principal(session), 403, "forbidden")

class RateLimitTests(AccountsTestCase):
    """429 ``rate_limited`` with Retry-After once a burst is spent."""

    account_rate = Rate(1, 2)

    async def test_failed_logins_limit_the_account(self):
        """Past a burst of 2 failed logins an account answers 429 (even with the right password), then recovers."""
        await self.register("alice")
        for _ in range(2):
            await self.assertApiError(self.auth.login({"username": "alice", "password": "wrong password"}), 401, "unauthorized")
        error = await self.assertApiError(
            self.auth.login({"username": "ALICE", "password": PASSWORD}), 429, "rate_limited"
        )
        self.assertEqual(error.headers["Retry-After"], "1")
        self.clock.advance(1)
        session = await self.auth.login({"username": "alice", "password": PASSWORD})
        self.assertEqual(session["user"]["username"], "alice")

    async def test_successful_logins_do_not_lock_the_account(self):
        """Many correct logins in a row never exhaust the account (only failures count)."""
        await self.register("bob")
        for _ in range(5):
            session = await self.auth.login({"username": "bob", "password": PASSWORD})
        self.assertEqual(session["user"]["username"], "bob")

    def test_address_rate_limit(self):
        """After the burst of 3, one address is refused with 429 and Retry-After; another address is not."""
        for _ in range(3):
            self.auth.limit_address("10.0.0.1")
        error = self.assertRaises(ApiError, self.auth.limit_address, "10.0.0.1")
        self.assertEqual((error.status, error.code, error.headers), (429, "rate_limited", {"Retry-After": "1"}))
        self.auth.limit_address("10.0.0.2")


class StrangerTests(AccountsTestCase):
    """Issue 9: what a stranger does in someone's name must not cost the server a hash or lock the owner out."""

    account_rate = Rate(1, 2)

    async def test_a_strangers_failures_do_not_lock_the_owner_out(self):
        """However many wrong passwords strangers send from other addresses, the owner logs in from the
        address they used before; a guesser's own address is stopped after its burst, and once the
        account's wider budget is spent so are addresses the account never logged in from."""
        await self.register("alice")
        await self.auth.login({"username": "alice", "password": PASSWORD}, "192.0.2.1")  # the owner's
        checked = 0
        for stranger in range(20):
            address = f"198.51.100.{stranger}"
            for _ in range(3):
                try:
                    await self.auth.login({"username": "alice", "password": "guess"}, address)
                except ApiError as e:
                    checked += e.status == 401
        self.assertEqual(checked, 2 * 5)  # the account's budget: five pairs' worth of failures, then 429s
        await self.assertApiError(
            self.auth.login({"username": "alice", "password": PASSWORD}, "203.0.113.9"), 429, "rate_limited")
        session = await self.auth.login({"username": "alice", "password": PASSWORD}, "192.0.2.1")
        self.assertEqual(session["user"]["username"], "alice")

    async def test_registering_a_taken_name_does_not_count_against_its_owner(self):
        """Registration attempts with a taken username are 409 and never make the owner's login 429."""
        await self.register("alice")
        for _ in range(10):
            await self.assertApiError(self.auth.register(
                {"username": "alice", "email": "other@example.com", "password": PASSWORD}), 409, "conflict")
        session = await self.auth.login({"username": "alice", "password": PASSWORD})
        self.assertEqual(session["user"]["username"], "alice")

    async def test_a_taken_name_or_email_costs_no_hash(self):
        """Finding 1: registering, or changing one's password together with a username or email that is
        taken, is 409 before any password is hashed, and the token keeps working (nothing changed)."""
        await self.setUpUsers()
        before = self.hasher.hashes
        for body in ({"username": "bob", "password": "new password"}, {"email": "BOB@example.com", "password": "new password"}):
            await self.assertApiError(self.users.update_user(self.alice, self.alice.user.id, body), 409, "conflict")
        await self.assertApiError(self.auth.register(
            {"username": "Bob", "email": "new@example.com", "password": PASSWORD}), 409, "conflict")
        self.assertEqual(self.hasher.hashes, before)
        self.assertEqual((await self.auth.authenticate(self.alice.claims and (await self.auth.login(
            {"username": "alice", "password": PASSWORD}))["token"])).user.username, "alice")

    async def test_password_changes_are_limited_per_account(self):
        """Finding 1: a burst of 5 password changes, then 429 with Retry-After; another account is unaffected."""
        await self.setUpUsers()
        principal = self.alice
        for n in range(5):
            self.clock.advance(0.01)
            await self.users.update_user(principal, principal.user.id, {"password": f"new password {n}"})
            principal = await self.principal(await self.auth.login({"username": "alice", "password": f"new password {n}"}))
        error = await self.assertApiError(
            self.users.update_user(principal, principal.user.id, {"password": "one too many"}), 429, "rate_limited")
        self.assertIn("Retry-After", error.headers)
        await self.users.update_user(self.bob, self.bob.user.id, {"password": "bob's new password"})

    async def test_a_change_to_the_same_values_writes_nothing(self):
        """Finding 5: a PATCH with the current username, email or role is answered without a store write,
        so it adds nothing to the change feed every chatd polls."""
        await self.setUpUsers()
        feed = await self.store.users_changed_since(0)
        same = await self.users.update_user(self.alice, self.alice.user.id,
                                               {"username": "alice", "email": "alice@example.com", "role": "user"})
        self.assertEqual(same["username"], "alice")
        self.assertEqual(await self.store.users_changed_since(0), feed)


class RenameTests(AccountsTestCase):
    """Finding 2: a renamed or deleted user's messages and sockets never pass for whoever takes the name next."""

    async def setUp(self):
        super().setUp()
        await self.setUpUsers()
        now = datetime(2026, 1, 1, tzinfo=timezone.utc)
        await self.store.insert_messages([Message("lobby", 1, self.bob.user.id, "bob", now, "hello"),
                                          Message("lobby", 2, self.alice.user.id, "alice", now, "hi")])

    async def _authors(self):
        return [m.user for m in await self.store.get_messages("lobby", [1, 2])]

    async def test_rename_renames_sockets_and_stored_messages(self):
        """After bob becomes robert, his open sockets and his stored messages say robert."""
        await self.users.update_user(self.bob, self.bob.user.id, {"username": "robert"})
        self.assertEqual(self.sockets.renames, [(self.bob.user.id, "robert")])
        self.assertEqual(await self._authors(), ["robert", "alice"])

    async def test_deleted_users_messages_show_no_takeable_name(self):
        """A deleted user's messages show "[deleted]", which no one can register."""
        await self.users.delete_user(self.admin, self.bob.user.id)
        self.assertEqual(await self._authors(), [DELETED_AUTHOR, "alice"])
        await self.assertApiError(self.auth.register(
            {"username": DELETED_AUTHOR, "email": "d@example.com", "password": PASSWORD}), 400, "invalid_request")


class TokenTests(AccountsTestCase):
    """authenticate, refresh and logout."""

    async def test_missing_or_bad_token(self):
        """No token, garbage, or an expired token is 401."""
        session = await self.register("alice")
        await self.assertApiError(self.auth.authenticate(None), 401, "unauthorized")
        await self.assertApiError(self.auth.authenticate("garbage"), 401, "unauthorized")
        self.clock.advance(3600)
        await self.assertApiError(self.principal(session), 401, "unauthorized")

    async def test_refresh(self):
        """Refresh gives a second working token; the old one stays valid."""
        session = await self.register("alice")
        fresh = self.auth.refresh(await self.principal(session))
        self.assertNotEqual(fresh["token"], session["token"])
        self.assertEqual((await self.principal(fresh)).user.username, "alice")
        self.assertEqual((await self.principal(session)).user.username, "alice")

    async def test_logout(self):
        """Logout revokes that token only and closes its sockets with 4001."""
        session = await self.register("alice")
        other = await self.auth.login({"username": "alice", "password": PASSWORD})
        principal = await self.principal(session)
        await self.auth.logout(principal)
        await self.assertApiError(self.principal(session), 401, "unauthorized")
        self.assertEqual(self.sockets.closed, [("token", principal.claims.jti, 4001)])
        self.assertEqual((await self.principal(other)).user.username, "alice")

    async def test_password_change_revokes_earlier_tokens(self):
        """Tokens issued before a password change stop working; a login with the new password works."""
        session = await self.register("alice")
        principal = await self.principal(session)
        self.clock.advance(1)
        await self.users.update_user(principal, principal.user.id, {"password": "new password"})
        await self.assertApiError(self.principal(session), 401, "unauthorized")
        self.assertEqual(self.sockets.closed, [("user", principal.user.id, 4001)])
        await self.assertApiError(
            self.auth.login({"username": "alice", "password": PASSWORD}), 401, "unauthorized"
        )
        fresh = await self.auth.login({"username": "alice", "password": "new password"})
        self.assertEqual((await self.principal(fresh)).user.username, "alice")


class UsersTests(AccountsTestCase):
    """The users resource: reading, changing and deleting."""

    async def test_self_or_admin(self):
        """A user may change themselves, not another user (403); an admin may change anyone."""
        await self.setUpUsers()
        mine = await self.users.update_user(self.alice, self.alice.user.id, {"email": "new@example.com"})
        self.assertEqual(mine["email"], "new@example.com")
        await self.assertApiError(
            self.users.update_user(self.alice, self.bob.user.id, {"email": "x@example.com"}), 403, "forbidden"
        )
        await self.assertApiError(self.users.delete_user(self.alice, self.bob.user.id), 403, "forbidden")
        theirs = await self.users.update_user(self.admin, self.bob.user.id, {"username": "robert"})
        self.assertEqual(theirs["username"], "robert")

    async def test_rename_conflict_and_missing(self):
        """Taking another user's name is 409; changing an unknown id is 404."""
        await self.setUpUsers()
        await self.assertApiError(
            self.users.update_user(self.alice, self.alice.user.id, {"username": "BOB"}), 409, "conflict"
        )
        await self.assertApiError(self.users.update_user(self.admin, "nope", {}), 404, "not_found")
        await self.assertApiError(self.users.get_user("nope"), 404, "not_found")

    async def test_only_admin_changes_role(self):
        """A user cannot make themselves admin (403); an admin can promote them."""
        await self.setUpUsers()
        await self.assertApiError(
            self.users.update_user(self.alice, self.alice.user.id, {"role": "admin"}), 403, "forbidden"
        )
        promoted = await self.users.update_user(self.admin, self.alice.user.id, {"role": "admin"})
        self.assertEqual(promoted["role"], "admin")

    async def test_last_admin_keeps_role(self):
        """The only admin cannot drop the role or be deleted; with a second admin they can."""
        await self.setUpUsers()
        me = self.admin.user.id
        await self.assertApiError(self.users.update_user(self.admin, me, {"role": "user"}), 403, "forbidden")
        await self.assertApiError(self.users.delete_user(self.admin, me), 403, "forbidden")
        await self.users.update_user(self.admin, self.alice.user.id, {"role": "admin"})
        demoted = await self.users.update_user(self.admin, me, {"role": "user"})
        self.assertEqual(demoted["role"], "user")

    async def test_delete_user(self):
        """Deleting a user makes their token 401, closes their sockets with 4001, and they are gone."""
        await self.setUpUsers()
        session = await self.auth.login({"username": "bob", "password": PASSWORD})
        await self.users.delete_user(self.bob, self.bob.user.id)
        await self.assertApiError(self.principal(session), 401, "unauthorized")
        self.assertEqual(self.sockets.closed, [("user", self.bob.user.id, 4001)])
        await self.assertApiError(self.users.get_user(self.bob.user.id), 404, "not_found")

    async def test_admin_deletes_other(self):
        """An admin may delete another user."""
        await self.setUpUsers()
        await self.users.delete_user(self.admin, self.alice.user.id)
        await self.assertApiError(self.users.get_user(self.alice.user.id), 404, "not_found")

    async def test_list_paging(self):
        """Users come in creation order, ``limit`` at a time, with ``next`` leading to the following page."""
        await self.setUpUsers()
        first = await self.users.list_users(2, None, False)
        self.assertEqual([user["username"] for user in first["users"]], ["admin", "alice"])
        self.assertEqual(first["next"], self.alice.user.id)
        second = await self.users.list_users(2, first["next"], False)
        self.assertEqual([user["username"] for user in second["users"]], ["bob"])
        self.assertIsNone(second["next"])


class BanTests(AccountsTestCase):
    """POST/DELETE /api/users/{id}/ban: admins only, never themselves nor the last admin."""

    async def setUp(self):
        super().setUp()
        await self.setUpUsers()

    async def test_ban_locks_the_user_out_and_closes_their_sockets(self):
        """A banned user's token is 403, their sockets close with 4003, and login is 403 with the reason."""
        session = await self.auth.login({"username": "bob", "password": PASSWORD})
        await self.moderation.ban(self.admin, self.bob.user.id, "spam")
        await self.assertApiError(self.principal(session), 403, "forbidden")
        self.assertEqual(self.sockets.closed, [("user", self.bob.user.id, 4003)])
        error = await self.assertApiError(self.auth.login({"username": "bob", "password": PASSWORD}), 403, "forbidden")
        self.assertIn("spam", error.message)

    async def test_unban_lets_them_back_in(self):
        """After an unban the user logs in again and their token works."""
        await self.moderation.ban(self.admin, self.bob.user.id, None)
        await self.moderation.unban(self.admin, self.bob.user.id)
        session = await self.auth.login({"username": "bob", "password": PASSWORD})
        self.assertEqual((await self.principal(session)).user.username, "bob")

    async def test_only_admins_ban(self):
        """A user who is not an admin may neither ban nor unban (403), and no socket is closed."""
        await self.assertApiError(self.moderation.ban(self.alice, self.bob.user.id, None), 403, "forbidden")
        await self.assertApiError(self.moderation.unban(self.alice, self.bob.user.id), 403, "forbidden")
        self.assertEqual(self.sockets.closed, [])

    async def test_no_self_ban_and_not_the_last_admin(self):
        """An admin cannot ban themselves; with a second admin, the first can be banned by them."""
        await self.assertApiError(self.moderation.ban(self.admin, self.admin.user.id, None), 403, "forbidden")
        await self.users.update_user(self.admin, self.alice.user.id, {"role": "admin"})
        alice = await self.auth.authenticate((await self.auth.login({"username": "alice", "password": PASSWORD}))["token"])
        await self.moderation.ban(alice, self.admin.user.id, None)
        self.assertEqual(self.sockets.closed[-1], ("user", self.admin.user.id, 4003))

    async def test_last_unbanned_admin_cannot_be_banned(self):
        """Even by another admin who is... the same last admin: count_admins excludes banned ones."""
        await self.users.update_user(self.admin, self.alice.user.id, {"role": "admin"})
        await self.store.update_user(self.admin.user.id, {"banned": True})  # behind the API's back
        alice = await self.auth.authenticate((await self.auth.login({"username": "alice", "password": PASSWORD}))["token"])
        await self.assertApiError(self.moderation.ban(alice, alice.user.id, None), 403, "forbidden")

    async def test_unknown_user(self):
        """Banning or unbanning an unknown or malformed user id is 404."""
        await self.assertApiError(self.moderation.ban(self.admin, "ffffffffffffffffffffffff", None), 404, "not_found")
        await self.assertApiError(self.moderation.unban(self.admin, "nope"), 404, "not_found")


class StoreDownTests(AccountsTestCase):
    """An unreachable store reaches the edge as StoreUnavailable, which answers 503 in one place."""

    async def test_store_down(self):
        """Register, login and authenticate fail with StoreUnavailable while the store is down; the one
        mapping every edge uses (``errors.api_error``) makes that SPEC.md's 503 ``unavailable``."""
        session = await self.register("alice")
        self.store.down = True
        for attempt in (self.register("bob"), self.auth.login({"username": "alice", "password": PASSWORD}),
                        self.principal(session)):
            with self.assertRaises(StoreUnavailable) as failed:
                await attempt
            error = api_error(failed.exception)
            self.assertEqual((error.status, error.code), (503, "unavailable"))
            self.assertIn("Retry-After", error.headers)
