"""Unit tests for chatd.storage.nx_child: the fixes and the password gate applied to the embedded store's handler."""

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase
from txmongo.protocol import MongoProtocol

from chatd.storage.nx_auth import AuthGate, Credentials
from chatd.storage.nx_child import (
    _finds_chunks_by_float_n,
    _says_primary,
    require_authentication,
)


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


class _Handler:
    """A stand-in for nx's handler: records what reaches it, answers like nx (OP_QUERY $cmd via handle_command)."""

    def __init__(self):
        self.seen = []

    def handle_command(self, msg):
        self.seen.append(("command", msg["sections"][0][1]))
        return msg["request_id"], {"ok": 1.0, "from": "nx"}

    def handle_insert(self, msg):
        self.seen.append(("insert", msg["sections"][0][1]))
        return msg["request_id"], {"ok": 1.0, "n": 1}

    def handle_query(self, msg):
        self.seen.append(("query", msg["collection"]))
        return msg["request_id"], [{"secret": "every user's email"}]

    def close_streams_for_connection(self, conn_id):
        self.seen.append(("closed", conn_id))


def op_msg(command, conn="c1"):
    """An OP_MSG as nx's server hands it to the handler."""
    return {"request_id": 9, "sections": [("body", command)], "_conn_id": conn}


def op_query(collection, query, conn="c1"):
    """A legacy OP_QUERY as nx's server hands it to the handler."""
    return {"request_id": 9, "collection": collection, "db": "chatd", "query": query, "_conn_id": conn}


class GatedHandlerTests(SynchronousTestCase):
    """With --auth-file, every way a message reaches nx's handler goes through the password gate."""

    def setUp(self):
        self.credentials = Credentials("chatd", "the password")
        self.gate = AuthGate(self.credentials)
        handler_class = type("Handler", (_Handler,), {})
        require_authentication(self.gate, handler_class)
        self.handler = handler_class()

    def login(self, conn="c1"):
        """Authenticate ``conn`` as txmongo does: SCRAM over OP_QUERY on ``chatd.$cmd``."""
        protocol = MongoProtocol()

        def send(database, command):
            request_id, (reply,) = self.handler.handle_query(op_query("$cmd", dict(command), conn))
            return defer.succeed(reply)

        protocol.send_op_query_command = send
        self.successResultOf(protocol.authenticate_scram_sha1("chatd", "chatd", self.credentials.password))

    def test_strangers_reach_nothing(self):
        """Before authenticating, commands, inserts and legacy finds are refused (13) and nx never sees them."""
        _, reply = self.handler.handle_command(op_msg({"find": "users", "$db": "chatd"}))
        self.assertEqual(reply["code"], 13)
        _, reply = self.handler.handle_insert(op_msg({"insert": "users", "$db": "chatd"}))
        self.assertEqual(reply["code"], 13)
        _, docs = self.handler.handle_query(op_query("users", {}))
        self.assertEqual([d["code"] for d in docs], [13])
        _, docs = self.handler.handle_query(op_query("$cmd", {"$query": {"listCollections": 1}}))
        self.assertEqual([d["code"] for d in docs], [13])
        self.assertEqual(self.handler.seen, [])

    def test_handshake_runs_on_admin(self):
        """A stranger's hello reaches nx, on ``admin`` whatever database it names (nx would create that file)."""
        self.handler.handle_command(op_msg({"hello": 1, "$db": "made-up"}))
        self.handler.handle_query(op_query("made-up.$cmd", {"ismaster": 1}))
        self.assertEqual(self.handler.seen, [("command", {"hello": 1, "$db": "admin"}),
                                             ("command", {"ismaster": 1, "$db": "admin"})])

    def test_authenticated_connection_reaches_nx(self):
        """After SCRAM over OP_QUERY (what txmongo sends), the same connection's commands go to nx unchanged."""
        self.login()
        self.assertEqual(self.handler.seen, [])  # the SASL conversation itself never reaches nx
        self.assertEqual(self.handler.handle_command(op_msg({"find": "users", "$db": "chatd"}))[1]["from"], "nx")
        self.handler.handle_insert(op_msg({"insert": "users", "$db": "chatd"}))
        self.handler.handle_query(op_query("users", {}))
        self.assertEqual(self.handler.seen, [("command", {"find": "users", "$db": "chatd"}),
                                             ("insert", {"insert": "users", "$db": "chatd"}), ("query", "users")])
        _, reply = self.handler.handle_command(op_msg({"find": "users", "$db": "chatd"}, conn="c2"))
        self.assertEqual(reply["code"], 13)  # another connection is still a stranger

    def test_closing_forgets_the_connection(self):
        """nx's close hook still runs, and a connection id seen again starts unauthenticated."""
        self.login()
        self.handler.close_streams_for_connection("c1")
        self.assertEqual(self.handler.seen, [("closed", "c1")])
        self.assertEqual(self.handler.handle_command(op_msg({"find": "users", "$db": "chatd"}))[1]["code"], 13)


class UpdateBytesTests(SynchronousTestCase):
    """Issue 9, finding 1: a duplicate key in an update that also sets bytes is 11000, not error 8."""

    def test_duplicate_with_bytes_is_a_duplicate_key_and_bytes_read_back(self):
        """Through a real nx child with pymongo: renaming onto a taken key while setting a hash is a
        DuplicateKeyError; setting bytes without a clash stores them and reads them back as bytes."""
        import pymongo
        from pymongo.errors import DuplicateKeyError

        from tests.harness import NxProcess

        nx = NxProcess().start()
        self.addCleanup(nx.kill)
        client = pymongo.MongoClient(nx.uri("bytes_test"), serverSelectionTimeoutMS=5000)
        self.addCleanup(client.close)
        users = client.bytes_test.users
        users.create_index("k", unique=True)
        users.insert_many([{"_id": 1, "k": "a", "h": b"x"}, {"_id": 2, "k": "b", "h": b"y"}])
        with self.assertRaises(DuplicateKeyError):
            users.update_one({"_id": 2}, {"$set": {"k": "a", "h": b"z"}})
        users.update_one({"_id": 2}, {"$set": {"k": "c", "h": b"\x00\xffhash"}})
        self.assertEqual(users.find_one({"_id": 2}), {"_id": 2, "k": "c", "h": b"\x00\xffhash"})
