"""Speed-up: bytes for an idle plain-TCP socket go to the kernel at once, not through Twisted's write buffer.

**What it reads.** Three attributes of Twisted's ``FileDescriptor`` that are
not part of any interface: ``dataBuffer`` with ``offset`` (what Twisted has
yet to write) and ``_tempDataLen`` (what it was handed since its last write),
plus the transport's ``socket``, ``connected``, ``disconnecting`` and ``TLS``
flag. ``tests/test_speedups_contract.py`` checks them on the installed Twisted.

**Why it is worth it.** ``transport.write`` only appends to a buffer; the
bytes reach the kernel on the next reactor turn, after an epoll registration
for writability and another to remove it: for a chat delivery of a few hundred
bytes to an idle socket those calls are most of the cost. Trying ``send``
first, as libuv does, costs one system call: the fan-out benchmark went from
23.9 to 11.7 µs of CPU per delivery (docs/PERFORMANCE.md, issue 3). Whatever
the kernel does not take goes through ``transport.write`` as usual, so order
is kept: the fast path is only taken when Twisted holds nothing for the socket.
TLS and any other transport use plain ``transport.write``.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet import tcp


def _buffer_empty(transport) -> bool:
    return not transport._tempDataLen and len(transport.dataBuffer) == transport.offset


def writer_for(transport) -> Callable[[bytes], None]:
    """A ``write(data)`` for ``transport``: direct when possible, else ``transport.write``."""
    if type(transport) is not tcp.Server or getattr(transport, "TLS", True):
        return transport.write
    sock = transport.socket

    def write(data: bytes) -> None:
        if transport.connected and not transport.disconnecting and _buffer_empty(transport):
            try:
                sent = sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                sent = 0  # transport.write below meets the same error and closes the connection
            if sent == len(data):
                return
            data = data[sent:]
        transport.write(data)

    return write


class DirectWrites:
    """Mixin for :class:`chatd.web.ws.ChatProtocol`: its writes (frames, the 101, Autobahn's own) try ``send`` first."""

    def _writer(self) -> Callable[[bytes], None]:
        return writer_for(self.transport)
