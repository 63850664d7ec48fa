"""Two per-connection costs of Autobahn 26 that chatd avoids (measured in docs/PERFORMANCE.md).

1. ``WebSocketProtocol._connectionMade`` pretty-prints every protocol option into a
   debug log call, whether or not debug logging is on: ~0.8 ms of CPU per
   handshake. Its module-level ``pformat`` is replaced by one that formats only
   if the debug event is actually rendered.
2. The same method copies ~40 options from the factory onto every protocol
   instance unless the instance already has them. Giving each factory its own
   protocol subclass that carries the options as class attributes skips the
   copy, and the 40 dictionary entries per idle connection.
"""

from __future__ import annotations

from pprint import pformat

import autobahn.websocket.protocol as _protocol


class _LazyFormat:
    """Formats its value when (and only if) it is turned into text."""

    __slots__ = ("_value",)

    def __init__(self, value) -> None:
        self._value = value

    def __str__(self) -> str:
        return pformat(self._value)

    __repr__ = __str__


def install() -> None:
    """Make Autobahn's debug-only pretty printing lazy (idempotent)."""
    _protocol.pformat = _LazyFormat


def protocol_with_options(factory, base: type) -> type:
    """A subclass of ``base`` holding ``factory``'s protocol options as class attributes."""
    options = {name: getattr(factory, name) for name in base.CONFIG_ATTRS}
    return type(base.__name__, (base,), options)
