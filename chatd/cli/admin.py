"""``python -m chatd.cli.admin`` (also ``chatd-admin``): promote, ban and unban users, back up and restore the store.

For an operator locked out of the API (no admin left, or a hostile one). It
works on the store chatd uses: ``--mongo URI``, or the embedded store in
``--data-dir`` (the running chatd's, when one runs there; otherwise it starts
the store itself for the command). A running chatd notices the change within
a few seconds through the store's user change feed: a banned user's sockets
close with 4003 and their tokens stop working.

    python -m chatd.cli.admin --data-dir ./chatd-data promote alice
    python -m chatd.cli.admin --mongo mongodb://db/chatd ban mallory --reason "spam"
    python -m chatd.cli.admin unban mallory
    python -m chatd.cli.admin --data-dir ./chatd-data backup chatd.backup
    python -m chatd.cli.admin --data-dir ./new-data restore chatd.backup [--force]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from twisted.internet import defer, task

from chatd.cli import backup
from chatd.storage.embedded import DataDirInUse, EmbeddedStore, clear_stale_pid_file
from chatd.storage.mongo import MongoStore
from chatd.storage.records import LastAdmin, StoreUnavailable

READY_WITHIN = 30.0  # seconds for the store to answer


class AdminError(Exception):
    """A refusal to show the operator (exit status 1)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line of ``chatd-admin``, with ``--data-dir`` made absolute."""
    parser = argparse.ArgumentParser(prog="chatd-admin", description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--mongo", default=os.environ.get("CHATD_MONGO_URI"), help="a mongodb:// URI (CHATD_MONGO_URI)")
    where.add_argument("--data-dir", default=os.environ.get("CHATD_DATA_DIR", "./chatd-data"),
                       help="the data directory of the embedded store (CHATD_DATA_DIR, default ./chatd-data)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("promote", help="make a user an admin").add_argument("user", help="username or email")
    ban = commands.add_parser("ban", help="ban a user: they cannot log in, their sockets close (4003)")
    ban.add_argument("user", help="username or email")
    ban.add_argument("--reason", help="kept with the user and shown to them at login")
    commands.add_parser("unban", help="lift a ban").add_argument("user", help="username or email")
    dump = commands.add_parser("backup", help="write the whole store (files too) to FILE while chatd serves")
    dump.add_argument("file", help="the backup file to write ('-': standard output)")
    restore = commands.add_parser("restore", help="replace the store with a backup (no chatd may serve it)")
    restore.add_argument("file", help="a file written by chatd-admin backup")
    restore.add_argument("--force", action="store_true", help="replace a store that already holds chatd data")
    args = parser.parse_args(argv)
    # As chatd does at start: a relative data dir means the same directory for the store's child.
    args.data_dir = os.path.abspath(args.data_dir)
    return args


async def apply(store, command: str, login: str, reason: str | None = None) -> str:
    """Carry out one command on ``store``; the line to print, or AdminError."""
    user = await store.find_user_by_login(login)
    if user is None:
        raise AdminError(f"no user {login!r}")
    if command == "promote":
        if user.role == "admin":
            return f"{user.username} is already an admin"
        await store.update_user(user.id, {"role": "admin"})
        return f"{user.username} is now an admin"
    if command == "ban":
        try:
            await store.update_user(user.id, {"banned": True, "ban_reason": reason})
        except LastAdmin:
            raise AdminError(f"{user.username} is the last admin; promote someone else first") from None
        return f"{user.username} is banned" + (f" ({reason})" if reason else "")
    if command == "unban":
        await store.update_user(user.id, {"banned": False, "ban_reason": None})
        return f"{user.username} is no longer banned"
    raise AdminError(f"unknown command {command!r}")


def _running_store_uri(data_dir: Path) -> str | None:
    """The URI of the embedded store a running chatd keeps in ``data_dir``, if one runs.

    It holds the store's password (the file is 0600): it is used, never printed.
    """
    embedded = EmbeddedStore(None, str(data_dir))
    try:
        clear_stale_pid_file(embedded.pid_file)  # removes what a killed chatd left behind
    except DataDirInUse:
        if embedded.uri_file.exists():
            return embedded.uri_file.read_text().strip()
    return None


async def _ready(reactor, store) -> None:
    deadline = reactor.seconds() + READY_WITHIN
    while True:
        try:
            await store.ping()
            return
        except StoreUnavailable:
            if reactor.seconds() > deadline:
                raise AdminError("the store did not answer; is it running?") from None
            await task.deferLater(reactor, 0.2, lambda: None)


async def run(reactor, args: argparse.Namespace) -> str:
    """Carry out the command line ``args`` on its store (started here if no chatd runs it); the line to print."""
    services = []
    restoring = args.command == "restore"
    if restoring:
        backup.check_file(args.file)  # before any store is touched
    if args.mongo:
        store = MongoStore(reactor, lambda: args.mongo, timeout=30.0, sweep=False)
    else:
        data_dir = Path(args.data_dir)
        try:
            uri = _running_store_uri(data_dir)
        except OSError as e:
            raise AdminError(str(e)) from None
        if uri is not None and restoring:
            raise AdminError(f"a chatd serves {data_dir}: stop it before restoring")
        if uri is None:  # no chatd there: run the store for this command
            if not (data_dir / "store").is_dir() and not restoring:
                raise AdminError(f"{data_dir} holds no chatd data")
            embedded = EmbeddedStore(reactor, str(data_dir))
            services.append(embedded)
            embedded.startService()
            uri = embedded.uri()  # its port is chosen on start
        store = MongoStore(reactor, lambda: uri, timeout=30.0, sweep=False)
    services.append(store)
    store.startService()
    try:
        await _ready(reactor, store)
        if args.command == "backup":
            return await backup.backup(reactor, store, args.file)
        if restoring:
            return await backup.restore(reactor, store, args.file, args.force)
        return await apply(store, args.command, args.user, getattr(args, "reason", None))
    finally:
        for service in reversed(services):
            await defer.maybeDeferred(service.stopService)


def main(argv: list[str] | None = None) -> None:
    """``chatd-admin``: run one command; exit status 1 with a message for a refusal."""
    args = parse_args(argv)

    async def command(reactor):
        try:
            line = await run(reactor, args)
            # A backup written to standard output keeps it for the backup alone.
            print(line, file=sys.stderr if getattr(args, "file", None) == "-" else sys.stdout)
        except (AdminError, backup.Refused) as e:
            print(f"chatd-admin: {e}", file=sys.stderr)
            raise SystemExit(1) from None

    task.react(lambda reactor: defer.ensureDeferred(command(reactor)))


if __name__ == "__main__":
    main()
