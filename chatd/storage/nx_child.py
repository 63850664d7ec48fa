"""Run nx-27017 (a MongoDB wire-protocol server on SQLite) with chatd's fixes and a password.

This is the entry point of the embedded store's child process
(``python -m chatd.storage.nx_child --port N --data-dir DIR --pid-file P --log-file L
[--auth-file F]``); :mod:`chatd.storage.embedded` starts and supervises it. It is
the only place in chatd that knows about nx-27017: the fixes, and the
authentication that ``--auth-file`` turns on, wrap methods of nx's command
handler, so nx itself is used unchanged.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path
from typing import Any

from chatd.deathsig import die_with_parent
from chatd.storage.nx_auth import AuthGate, Credentials, unauthorized


def _says_primary(handle_command):
    """Add ``ismaster: true`` to nx's hello/isMaster reply.

    nx answers with ``isWritablePrimary`` only. txmongo reads the legacy
    ``ismaster`` field to decide whether it reached a primary and, lacking it,
    keeps reconnecting forever.
    """

    @functools.wraps(handle_command)
    def wrapper(self, msg: dict[str, Any]):
        request_id, reply = handle_command(self, msg)
        if reply.get("isWritablePrimary") is True and "ismaster" not in reply:
            reply = dict(reply, ismaster=True)
        return request_id, reply

    return wrapper


def _integral_chunk_numbers(value: Any) -> Any:
    """Turn float chunk numbers (``1.0``) into ints, inside operators too."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral_chunk_numbers(inner) for key, inner in value.items()}
    return value


def _finds_chunks_by_float_n(chunks_find):
    """Let GridFS chunk lookups match txmongo's float chunk number ``n``.

    txmongo asks for ``{"files_id": id, "n": 1.0}``; nx only filters on ``n``
    when it is an ``int``, so without this every chunk reads back as chunk 0.
    """

    @functools.wraps(chunks_find)
    def wrapper(self, request_id, command_doc, *args, **kwargs):
        query = command_doc.get("filter")
        if isinstance(query, dict) and "n" in query:
            query = dict(query, n=_integral_chunk_numbers(query["n"]))
            command_doc = dict(command_doc, filter=query)
        return chunks_find(self, request_id, command_doc, *args, **kwargs)

    return wrapper


def _as_binary(value: Any, binary: type) -> Any:
    """``bytes`` values (inside documents and lists too) as ``binary``."""
    if type(value) is bytes:
        return binary(value)
    if isinstance(value, dict):
        return {key: _as_binary(inner, binary) for key, inner in value.items()}
    if isinstance(value, list):
        return [_as_binary(inner, binary) for inner in value]
    return value


def _updates_bytes_as_binary(handle_command):
    """Let an update that sets bytes report a duplicate key as a duplicate key.

    When an update breaks a unique index, nx retries it on a slower path that
    cannot serialise plain ``bytes`` (a password hash), and answers error 8
    ("Object of type bytes is not JSON serializable") instead of 11000: chatd
    would answer 500 where a taken name is a 409. Handing nx's storage layer its
    own ``Binary`` for those values makes both paths store them, and the
    duplicate reach chatd as the 11000 it is.
    """

    @functools.wraps(handle_command)
    def wrapper(self, msg: dict[str, Any]):
        command = _body(msg)
        if command is not None and ("update" in command or "findAndModify" in command or "findandmodify" in command):
            from neosqlite.binary import Binary

            msg = dict(msg, sections=[(kind, _as_binary(doc, Binary)) for kind, doc in msg.get("sections", ())])
        return handle_command(self, msg)

    return wrapper


def patch_handler() -> None:
    """Apply the fixes to nx's handler class (idempotent)."""
    from nx_27017.handler import NeoSQLiteHandler

    if getattr(NeoSQLiteHandler, "_chatd_patched", False):
        return
    NeoSQLiteHandler.handle_command = _says_primary(_updates_bytes_as_binary(NeoSQLiteHandler.handle_command))
    NeoSQLiteHandler._handle_gridfs_chunks_find = _finds_chunks_by_float_n(
        NeoSQLiteHandler._handle_gridfs_chunks_find
    )
    NeoSQLiteHandler._chatd_patched = True


def _body(msg: dict[str, Any]) -> dict[str, Any] | None:
    """The command document of an OP_MSG as nx parses it."""
    for section_type, doc in msg.get("sections", ()):
        if section_type == "body" and isinstance(doc, dict):
            return doc
    return None


def _gated_command(handle, gate: AuthGate):
    """Wrap nx's ``handle_command`` or ``handle_insert`` (OP_MSG) with the gate.

    nx opens (and creates) a SQLite file for whatever ``$db`` a command names,
    before looking at the command, so the few commands a stranger may send run
    against ``admin``, whatever they name.
    """

    @functools.wraps(handle)
    def wrapper(self, msg: dict[str, Any]):
        connection = msg.get("_conn_id")
        command = _body(msg)
        reply = gate.check(connection, command)
        if reply is not None:
            return msg["request_id"], reply
        if not gate.authenticated(connection):
            msg = dict(msg, sections=[("body", {**command, "$db": "admin"})])
        return handle(self, msg)

    return wrapper


def _gated_query(handle_query, gate: AuthGate):
    """Wrap nx's ``handle_query`` (legacy OP_QUERY, which txmongo uses to hello and authenticate)."""

    @functools.wraps(handle_query)
    def wrapper(self, msg: dict[str, Any]):
        connection = msg.get("_conn_id")
        if gate.authenticated(connection):
            return handle_query(self, msg)
        collection = msg.get("collection")
        if collection and collection != "$cmd" and not collection.endswith(".$cmd"):
            # A legacy find: OP_REPLY's error flag is nx's to set, so the refusal is the one document.
            return msg["request_id"], [dict(unauthorized("find"), **{"$err": "command find requires authentication"})]
        query = msg.get("query") or {}
        command = query.get("$query", query) if isinstance(query, dict) else None
        # As nx does for $cmd, but through the gated handle_command and without opening msg's database.
        request_id, reply = self.handle_command(
            {"request_id": msg["request_id"], "sections": [("body", command)], "_conn_id": connection}
        )
        return request_id, [reply]

    return wrapper


def _forgets_connection(close_streams, gate: AuthGate):
    """Wrap nx's ``close_streams_for_connection``, called when a client disconnects."""

    @functools.wraps(close_streams)
    def wrapper(self, conn_id):
        gate.forget(conn_id)
        return close_streams(self, conn_id)

    return wrapper


def require_authentication(gate: AuthGate, handler: type | None = None) -> None:
    """Put ``gate`` in front of every entry point nx's server calls for a client's message.

    ``handler`` is nx's handler class (tests pass a stand-in).
    """
    if handler is None:
        from nx_27017.handler import NeoSQLiteHandler as handler
    handler.handle_command = _gated_command(handler.handle_command, gate)
    handler.handle_insert = _gated_command(handler.handle_insert, gate)
    handler.handle_query = _gated_query(handler.handle_query, gate)
    handler.close_streams_for_connection = _forgets_connection(handler.close_streams_for_connection, gate)



def main(argv: list[str]) -> None:
    """Patch the handler (and require the password in ``--auth-file``), then hand over to nx's command line."""
    die_with_parent()
    # nx's files (SQLite with its -wal and -shm, log, pid) are for chatd's eyes only.
    os.umask(0o077)
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)  # the rest is nx's
    parser.add_argument("--auth-file", type=Path, help="a file holding the one user and password (mode 0600)")
    ours, rest = parser.parse_known_args(argv)
    patch_handler()
    if ours.auth_file is not None:
        try:
            credentials = Credentials.read(ours.auth_file)
        except (OSError, ValueError) as e:
            raise SystemExit(f"nx_child: cannot read --auth-file: {e}") from None
        require_authentication(AuthGate(credentials))
    from nx_27017 import nx_27017

    sys.argv = ["nx-27017", *rest]
    nx_27017.main()


if __name__ == "__main__":
    main(sys.argv[1:])
