"""Unit tests for chatd.accounts.validation: SPEC.md's body rules (Validation; Details: Users)."""

import json

from twisted.trial.unittest import SynchronousTestCase

from chatd.accounts import validation
from chatd.errors import ApiError

GOOD = {"username": "alice", "email": "alice@example.com", "password": "correct horse"}
NOT_STRINGS = [{"$ne": ""}, {"$gt": None}, 0, 1.5, None, [], ["a"], True, False]


class _Refusals:
    """Assertions on the 400 ApiError a refused body raises."""

    def assertInvalid(self, function, body, field):
        """``function(body)`` raises 400 ``invalid_request`` naming ``field``; returns the error."""
        error = self.assertRaises(ApiError, function, body)
        self.assertEqual((error.status, error.code), (400, "invalid_request"))
        self.assertIn(field, error.fields or {})
        return error


class RegistrationTests(_Refusals, SynchronousTestCase):
    """``POST /api/auth/register`` bodies."""

    def test_accepts_good_body(self):
        """A valid body becomes a Registration with the same values."""
        form = validation.registration(dict(GOOD))
        self.assertEqual((form.username, form.email, form.password), (GOOD["username"], GOOD["email"], GOOD["password"]))

    def test_refuses_non_strings(self):
        """Objects such as ``{"$ne": ""}``, numbers, null, lists and booleans are 400 naming the field."""
        for field in GOOD:
            for value in NOT_STRINGS:
                with self.subTest(field=field, value=value):
                    error = self.assertInvalid(validation.registration, dict(GOOD, **{field: value}), field)
                    self.assertEqual(error.fields[field], "must be a string")

    def test_refuses_unknown_field(self):
        """An unexpected field (such as ``role``) is refused by name."""
        error = self.assertInvalid(validation.registration, dict(GOOD, role="admin"), "role")
        self.assertEqual(error.fields, {"role": "unknown field"})

    def test_requires_every_field(self):
        """Each of username, email and password is required."""
        for field in GOOD:
            with self.subTest(field=field):
                body = {name: value for name, value in GOOD.items() if name != field}
                error = self.assertInvalid(validation.registration, body, field)
                self.assertEqual(error.fields, {field: "required"})

    def test_username_rules(self):
        """Usernames are 3 to 32 of ``[A-Za-z0-9_.-]``."""
        for name in ["abc", "a" * 32, "A.b-c_9"]:
            with self.subTest(accepted=name):
                self.assertEqual(validation.registration(dict(GOOD, username=name)).username, name)
        for name in ["ab", "a" * 33, "", "al ice", "alice!", "al@ice", "ålice", "alice\n", "ab\u0131"]:
            with self.subTest(refused=name):
                self.assertInvalid(validation.registration, dict(GOOD, username=name), "username")

    def test_email_rules(self):
        """Emails must be syntactically valid addresses."""
        for email in ["a@b.co", "first.last+tag@sub.example.org", "x_y@example-host.com"]:
            with self.subTest(accepted=email):
                self.assertEqual(validation.registration(dict(GOOD, email=email)).email, email)
        for email in ["", "alice", "alice@", "@example.com", "alice@example", "a b@example.com",
                      "a@b@example.com", "alice@exa mple.com", "alice@-example.com", "a\n@example.com",
                      "a" * 250 + "@example.com"]:
            with self.subTest(refused=email):
                self.assertInvalid(validation.registration, dict(GOOD, email=email), "email")

    def test_password_length_boundaries(self):
        """Passwords are 8 to 128 characters: 7 and 129 are refused, 8 and 128 accepted."""
        for length in [8, 128]:
            with self.subTest(accepted=length):
                self.assertEqual(len(validation.registration(dict(GOOD, password="p" * length)).password), length)
        for length in [0, 7, 129]:
            with self.subTest(refused=length):
                self.assertInvalid(validation.registration, dict(GOOD, password="p" * length), "password")

    def test_password_counts_unicode_characters(self):
        """Non-ASCII passwords are measured in characters, not bytes."""
        self.assertEqual(validation.registration(dict(GOOD, password="é" * 8)).password, "é" * 8)
        self.assertEqual(validation.registration(dict(GOOD, password="\U0001F600" * 128)).password, "\U0001F600" * 128)
        self.assertInvalid(validation.registration, dict(GOOD, password="\U0001F600" * 7), "password")
        self.assertInvalid(validation.registration, dict(GOOD, password="é" * 129), "password")

    def test_all_problems_reported_at_once(self):
        """Every bad field is named in one answer."""
        error = self.assertInvalid(validation.registration, {"username": "x", "email": "nope", "password": "short"}, "username")
        self.assertEqual(set(error.fields), {"username", "email", "password"})


class LoginTests(_Refusals, SynchronousTestCase):
    """``POST /api/auth/login`` bodies."""

    def test_by_username(self):
        """A username and password are accepted."""
        form = validation.login({"username": "alice", "password": "pw"})
        self.assertEqual((form.login, form.password), ("alice", "pw"))

    def test_by_email(self):
        """An email and password are accepted."""
        form = validation.login({"email": "alice@example.com", "password": "pw"})
        self.assertEqual((form.login, form.password), ("alice@example.com", "pw"))

    def test_refuses_non_strings(self):
        """Operator objects and other non-strings never reach the store."""
        for field, base in [("username", {"password": "pw"}), ("email", {"password": "pw"}), ("password", {"username": "alice"})]:
            for value in NOT_STRINGS:
                with self.subTest(field=field, value=value):
                    self.assertInvalid(validation.login, dict(base, **{field: value}), field)

    def test_needs_exactly_one_identifier(self):
        """Neither or both of username and email are refused."""
        self.assertInvalid(validation.login, {"password": "pw"}, "username")
        self.assertInvalid(validation.login, {"username": "a", "email": "a@b.co", "password": "pw"}, "username")

    def test_needs_password(self):
        """A login without a password is refused."""
        self.assertInvalid(validation.login, {"username": "alice"}, "password")

    def test_refuses_unknown_field(self):
        """Unknown fields are refused by name."""
        self.assertInvalid(validation.login, {"username": "a", "password": "pw", "remember": "yes"}, "remember")


class UserChangesTests(_Refusals, SynchronousTestCase):
    """``PATCH /api/users/{id}`` bodies."""

    def test_accepts_any_subset(self):
        """Any of username, email, password and role may be sent."""
        body = {"username": "bob", "email": "bob@example.com", "password": "p" * 8, "role": "admin"}
        self.assertEqual(validation.user_changes(dict(body)), body)
        self.assertEqual(validation.user_changes({"email": "b@example.com"}), {"email": "b@example.com"})

    def test_refuses_non_strings(self):
        """Each field must be a string."""
        for field in ["username", "email", "password", "role"]:
            for value in NOT_STRINGS:
                with self.subTest(field=field, value=value):
                    self.assertInvalid(validation.user_changes, {field: value}, field)

    def test_refuses_unknown_fields(self):
        """Fields such as ``banned`` or ``password_hash`` cannot be set this way."""
        for field in ["banned", "password_hash", "id", "tokens_valid_after"]:
            with self.subTest(field=field):
                self.assertInvalid(validation.user_changes, {field: "x"}, field)

    def test_applies_field_rules(self):
        """The registration rules hold for changes; role is user or admin."""
        self.assertInvalid(validation.user_changes, {"username": "ab"}, "username")
        self.assertInvalid(validation.user_changes, {"email": "nope"}, "email")
        self.assertInvalid(validation.user_changes, {"password": "short"}, "password")
        self.assertInvalid(validation.user_changes, {"role": "root"}, "role")


class HostileTextTests(_Refusals, SynchronousTestCase):
    """Bodies built to crash the server or to spoof an address (issue 9, finding 11 and the email rule)."""

    def test_lone_surrogates_are_refused_in_every_field(self):
        """Half an emoji (a lone surrogate, valid in JSON) in a registration field or a login is a 400 naming it."""
        for field in GOOD:
            with self.subTest(register=field):
                value = "abc\ud83d" + ("@example.com" if field == "email" else "defgh")
                body = json.loads(json.dumps(dict(GOOD, **{field: value})))
                self.assertInvalid(validation.registration, body, field)
        for field in ("username", "email", "password"):
            with self.subTest(login=field):
                body = {field: "x\udc00yzabcdefg", **({"password": "correct horse"} if field != "password" else {"username": "alice"})}
                self.assertInvalid(validation.login, body, field)
        self.assertInvalid(validation.user_changes, {"password": "long enough \ud800"}, "password")

    def test_invisible_and_bidi_characters_are_refused_in_emails(self):
        """Zero-width and bidi-control characters (which make one address look like another) are not an email."""
        for invisible in ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u202e", "\u202a", "\u2066", "\u061c", "\u00ad"):
            with self.subTest(character=hex(ord(invisible))):
                self.assertInvalid(validation.registration, dict(GOOD, email=f"ali{invisible}ce@example.com"), "email")
        self.assertEqual(validation.registration(dict(GOOD, email="zoë@example.com")).email, "zoë@example.com")
