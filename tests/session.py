"""One user's ordinary session against a chatd at some URL (chatd itself, or a proxy in front of it).

It touches everything an operator's log could leak: passwords (register, a
login, a failed login), tokens (issued by register, login and refresh; sent in
``Authorization`` and in ``/ws?token=…``), query strings, a file upload and its
download, the chat on the WebSocket, and a logout. It asserts what a user would
see, and returns the secrets it used so a test can look for them in a log.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from tests.harness import Client
from tests.test_multipart import CTYPE
from tests.test_e2e_files import upload_body
from tests.wsclient import joined

PASSWORD = "Tr0ub4dor&3-very-secret"
WRONG_PASSWORD = "Wr0ng-guess-not-in-logs"
QUERIES = ("limit=3", "after=zz-query-marker", "token=")


@dataclass
class Secrets:
    """What must never reach a log."""

    passwords: list[str] = field(default_factory=lambda: [PASSWORD, WRONG_PASSWORD])
    tokens: list[str] = field(default_factory=list)
    queries: tuple[str, ...] = QUERIES


async def chat_session(test, base_url: str, file_size: int = 200_000, agent=None, origin: str | None = None) -> Secrets:
    """Register, log in (and fail once), refresh, chat on two sockets, upload and fetch a file, log out.

    ``agent``: the HTTP agent (one that trusts a test certificate for https); ``origin``: the sockets' Origin.
    """
    http = Client(base_url, agent=agent)
    secrets = Secrets()
    alice = await http.register("alice", password=PASSWORD)
    bob = await http.register("bob", password=PASSWORD + "-bob")
    secrets.passwords.append(PASSWORD + "-bob")
    login = await http.request("POST", "/api/auth/login", {"username": "alice", "password": PASSWORD})
    test.assertEqual(login.status, 200, login)
    failed = await http.request("POST", "/api/auth/login", {"username": "alice", "password": WRONG_PASSWORD})
    test.assertEqual(failed.status, 401, failed)
    refreshed = await http.request("POST", "/api/auth/refresh", token=login.json()["token"])
    test.assertEqual(refreshed.status, 200, refreshed)
    token = refreshed.json()["token"]
    secrets.tokens += [alice["token"], bob["token"], login.json()["token"], token]

    a = await joined(base_url, token, test=test, origin=origin)
    b = await joined(base_url, bob["token"], test=test, origin=origin)
    a.send({"type": "message", "room": "lobby", "text": "hello through the log", "client_id": "c1"})
    test.assertEqual((await b.next("message"))["text"], "hello through the log")
    await a.next("ack")

    data = os.urandom(file_size)
    upload = await http.request("POST", "/api/rooms/lobby/files", raw=upload_body("notes.bin", data),
                                token=token, content_type=CTYPE)
    test.assertEqual(upload.status, 201, upload)
    download = await http.request("GET", upload.json()["file"]["url"], token=bob["token"])
    test.assertEqual(download.body, data)
    test.assertEqual((await b.next("message"))["file"]["size"], file_size)

    history = await http.request("GET", "/api/rooms/lobby/messages?limit=3", token=bob["token"])
    test.assertEqual(history.status, 200, history)
    users = await http.request("GET", "/api/users?after=zz-query-marker", token=bob["token"])
    test.assertEqual(users.status, 200, users)
    logout = await http.request("POST", "/api/auth/logout", token=login.json()["token"])
    test.assertEqual(logout.status, 204, logout)
    await a.close()
    await b.close()
    return secrets
