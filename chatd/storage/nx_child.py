"""Run nx-27017 (a MongoDB wire-protocol server on SQLite) with chatd's two fixes.

This is the entry point of the embedded store's child process
(``python -m chatd.storage.nx_child --port N --data-dir DIR --pid-file P --log-file L``);
:mod:`chatd.storage.embedded` starts and supervises it. It is the only place in
chatd that knows about nx-27017: both fixes wrap methods of nx's command handler,
so nx itself is used unchanged.
"""

from __future__ import annotations

import functools
import sys
from typing import Any


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


def patch_handler() -> None:
    """Apply both fixes to nx's handler class (idempotent)."""
    from nx_27017.handler import NeoSQLiteHandler

    if getattr(NeoSQLiteHandler, "_chatd_patched", False):
        return
    NeoSQLiteHandler.handle_command = _says_primary(NeoSQLiteHandler.handle_command)
    NeoSQLiteHandler._handle_gridfs_chunks_find = _finds_chunks_by_float_n(
        NeoSQLiteHandler._handle_gridfs_chunks_find
    )
    NeoSQLiteHandler._chatd_patched = True


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when chatd dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def main(argv: list[str]) -> None:
    """Patch the handler, then hand over to nx's own command line."""
    _die_with_parent()
    patch_handler()
    from nx_27017 import nx_27017

    sys.argv = ["nx-27017", *argv]
    nx_27017.main()


if __name__ == "__main__":
    main(sys.argv[1:])
