"""Send straight to a plain TCP socket when nothing is waiting in Twisted's buffer.

``transport.write`` always buffers: it registers the socket for writability
(an epoll call), the next reactor turn sends it, and the socket is then
unregistered (another epoll call). For a broadcast to hundreds of sockets that
is most of the cost of a delivery. Trying ``send`` first, as libuv does, costs
one system call; whatever the kernel does not take goes through
``transport.write`` as usual, so ordering is kept: the fast path is only taken
when Twisted holds nothing for the socket (Autobahn's own pings and close
frames still go through the transport).

This reads two attributes of Twisted's ``FileDescriptor`` (``dataBuffer`` with
``offset``, and ``_tempDataLen``), checked by ``tests/test_fastwrite.py``
against the installed Twisted; TLS and any other transport use plain
``transport.write``.
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
