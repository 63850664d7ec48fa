"""Unit tests for chatd.web.params: JSON bodies, paging and flag parameters, message edits."""

import json

from twisted.trial.unittest import SynchronousTestCase

from chatd.errors import ApiError
from chatd.web import params
from tests.test_validation import _Refusals


class ParseJsonObjectTests(_Refusals, SynchronousTestCase):
    """Request bodies: content type, size and JSON shape."""

    def assertStatus(self, status, code, raw, content_type="application/json"):
        error = self.assertRaises(ApiError, params.parse_json_object, raw, content_type)
        self.assertEqual((error.status, error.code), (status, code))

    def test_json_object(self):
        """A JSON object body is returned, charset parameters and case in the type allowed."""
        self.assertEqual(params.parse_json_object(b'{"a": "b"}', "application/json"), {"a": "b"})
        self.assertEqual(params.parse_json_object(b'{"a": 1}', "Application/JSON; charset=utf-8"), {"a": 1})

    def test_wrong_content_type(self):
        """A missing or non-JSON content type is 415."""
        for content_type in [None, "", "text/plain", "application/x-www-form-urlencoded", "application/jsonx"]:
            with self.subTest(content_type=content_type):
                self.assertStatus(415, "unsupported_media_type", b"{}", content_type)

    def test_invalid_json(self):
        """Malformed JSON or bytes that are not text are 400."""
        for raw in [b"", b"{", b"{'a': 1}", b"\xff\xfe\xfa", b'{"a": 1} x']:
            with self.subTest(raw=raw):
                self.assertStatus(400, "invalid_request", raw)

    def test_not_an_object(self):
        """Valid JSON that is not an object is 400."""
        for raw in [b"[]", b'"text"', b"1", b"null", b"true"]:
            with self.subTest(raw=raw):
                self.assertStatus(400, "invalid_request", raw)

    def test_size_limit(self):
        """A body of exactly 64 KiB is read; one byte more is 413."""
        padding = 64 * 1024 - len(json.dumps({"a": ""}))
        exact = json.dumps({"a": "x" * padding}).encode()
        self.assertEqual(len(exact), 64 * 1024)
        self.assertEqual(len(params.parse_json_object(exact, "application/json")["a"]), padding)
        self.assertStatus(413, "too_large", exact + b" ")


class QueryParameterTests(_Refusals, SynchronousTestCase):
    """``limit`` and boolean query parameters."""

    def test_page_limit_default(self):
        """Without ``limit`` the page holds 50."""
        self.assertEqual(params.page_limit(None), 50)

    def test_page_limit_range(self):
        """1 and 200 are accepted."""
        self.assertEqual([params.page_limit(raw) for raw in ["1", "200", "75"]], [1, 200, 75])

    def test_page_limit_refused(self):
        """0, 201, negatives, fractions and words are 400 naming ``limit``."""
        for raw in ["0", "201", "-1", "1.5", "ten", "", " 5", "99999"]:
            with self.subTest(raw=raw):
                self.assertInvalid(params.page_limit, raw, "limit")

    def test_flag(self):
        """true/1 and false/0 (any case) parse; absent is false; anything else is 400 naming it."""
        self.assertEqual(
            [params.flag(raw, "online") for raw in [None, "true", "TRUE", "1", "false", "0"]],
            [False, True, True, True, False, False],
        )
        error = self.assertRaises(ApiError, params.flag, "yes", "online")
        self.assertEqual((error.status, error.code, error.fields), (400, "invalid_request", {"online": "true or false"}))

    def test_deeply_nested_json_is_400_not_a_crash(self):
        """A 20,000-deep nested array is a 400 ``invalid_request``, not a RecursionError (500)."""
        raw = b"[" * 20_000 + b"]" * 20_000
        error = self.assertRaises(ApiError, params.parse_json_object, raw, "application/json")
        self.assertEqual((error.status, error.code), (400, "invalid_request"))

    def test_message_edit_text(self):
        """An edit is {"text"} of 1 to 4000 characters of real text; anything else is 400 naming the field."""
        self.assertEqual(params.message_edit({"text": "new words"}), "new words")
        for body, field in (({}, "text"), ({"text": ""}, "text"), ({"text": "x" * 4001}, "text"),
                            ({"text": 5}, "text"), ({"text": "ok", "extra": "no"}, "extra"),
                            ({"text": "half \ud83d"}, "text")):
            with self.subTest(body=body):
                self.assertInvalid(params.message_edit, body, field)
