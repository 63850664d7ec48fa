"""Which unique key a duplicate-key error is about: from the index, never from the clashing value."""

from twisted.trial.unittest import SynchronousTestCase

from chatd.storage.mongo_users import duplicate_field


class DuplicateFieldTests(SynchronousTestCase):
    def test_nx_index_names(self):
        """nx-27017 names the index in its message: each field is recognised, and a bare _id clash too."""
        for message, field in [
            ("UNIQUE constraint failed: index 'idx_users_email_key'", "email"),
            ("UNIQUE constraint failed: index 'idx_users_username_key'", "username"),
            ("UNIQUE constraint failed: index 'idx_messages_dedupe'", "dedupe"),
            ("UNIQUE constraint failed: messages._id", "_id"),
        ]:
            self.assertEqual(duplicate_field({"errmsg": message}), field, message)

    def test_values_that_look_like_index_names_do_not_mislead(self):
        """A username or room named like an index does not change which field is reported."""
        taken_username = {"errmsg": 'E11000 ... index: username_key_unique dup key: { username_key: "email_key_unique" }',
                          "keyPattern": {"username_key": 1}}
        taken_seq = {"errmsg": 'E11000 ... index: _id_ dup key: { _id: "dedupe_unique:1" }'}
        self.assertEqual(duplicate_field(taken_username), "username")
        self.assertEqual(duplicate_field(taken_seq), "_id")
