"""Unit tests for chatd.storage.nx_child: the two fixes applied to the embedded store's handler."""

from twisted.trial.unittest import SynchronousTestCase

from chatd.storage.nx_child import _finds_chunks_by_float_n, _says_primary


class SaysPrimaryTests(SynchronousTestCase):
    """txmongo needs ``ismaster`` in the hello reply to treat the embedded store as a primary."""

    def wrap(self, reply):
        def handle_command(handler, msg):
            return 7, reply

        return _says_primary(handle_command)(object(), {"hello": 1})

    def test_adds_ismaster(self):
        """A writable primary reply gains ``ismaster: true`` and keeps its other fields and request id."""
        request_id, reply = self.wrap({"isWritablePrimary": True, "ok": 1.0})
        self.assertEqual((request_id, reply), (7, {"isWritablePrimary": True, "ok": 1.0, "ismaster": True}))

    def test_leaves_other_replies(self):
        """Replies that are not from a writable primary, or already say ``ismaster``, are unchanged."""
        for original in [{"ok": 1.0}, {"isWritablePrimary": False}, {"isWritablePrimary": True, "ismaster": False}]:
            with self.subTest(reply=original):
                self.assertEqual(self.wrap(dict(original)), (7, original))

    def test_does_not_mutate_original(self):
        """The handler's own reply dict is not modified in place."""
        original = {"isWritablePrimary": True}
        self.wrap(original)
        self.assertEqual(original, {"isWritablePrimary": True})


class FloatChunkNumberTests(SynchronousTestCase):
    """GridFS chunk lookups by txmongo's float ``n`` find the right chunk."""

    def find(self, command_doc):
        """The command document the wrapped handler receives, with positional and keyword args passed on."""
        seen = []

        def chunks_find(handler, request_id, doc, *args, **kwargs):
            seen.append((request_id, doc, args, kwargs))
            return "result"

        result = _finds_chunks_by_float_n(chunks_find)(object(), 3, command_doc, "extra", flag=True)
        self.assertEqual(result, "result")
        (request_id, doc, args, kwargs), = seen
        self.assertEqual((request_id, args, kwargs), (3, ("extra",), {"flag": True}))
        return doc

    def test_float_n_becomes_int(self):
        """``n: 1.0`` reaches the handler as the int 1."""
        doc = self.find({"find": "fs.chunks", "filter": {"files_id": "f", "n": 1.0}})
        self.assertEqual(doc["filter"], {"files_id": "f", "n": 1})
        self.assertIs(type(doc["filter"]["n"]), int)

    def test_inside_operators(self):
        """Float numbers inside operators such as ``$gte`` become ints too."""
        doc = self.find({"filter": {"files_id": "f", "n": {"$gte": 2.0, "$lt": 5.0}}})
        self.assertEqual(doc["filter"]["n"], {"$gte": 2, "$lt": 5})
        self.assertIs(type(doc["filter"]["n"]["$gte"]), int)

    def test_other_filters_untouched(self):
        """Filters without ``n``, non-integral floats and other fields pass through as they were."""
        for command_doc in [
            {"filter": {"files_id": "f"}},
            {"filter": {"files_id": 1.0, "n": 2}},
            {"filter": {"n": 1.5}},
            {"find": "fs.chunks"},
            {"filter": None},
        ]:
            with self.subTest(command_doc=command_doc):
                self.assertEqual(self.find(command_doc), command_doc)
        doc = self.find({"filter": {"files_id": 1.0, "n": 2.0}})
        self.assertIs(type(doc["filter"]["files_id"]), float)
