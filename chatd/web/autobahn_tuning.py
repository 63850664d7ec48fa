"""Costs of Autobahn 26 that chatd avoids (measured in docs/PERFORMANCE.md).

1. Autobahn formats the arguments of its debug log calls whether or not debug
   logging is on: ``_connectionMade`` pretty-prints every protocol option
   (~0.8 ms of CPU per handshake), and every frame received or sent calls
   ``hltype``/``hlval`` (colour-highlighted names, ~5 µs each). The module-level
   ``pformat``, ``hltype`` and ``hlval`` of Autobahn's WebSocket modules are
   replaced by versions that format only if the debug event is actually rendered.
2. The same method copies ~40 options from the factory onto every protocol
   instance unless the instance already has them, and lists each one for that
   debug line. Giving each factory its own protocol subclass that carries the
   options as class attributes, with an empty ``CONFIG_ATTRS`` (read nowhere
   else), skips the copy, the list, and 40 dictionary entries per idle connection.
"""

from __future__ import annotations

from pprint import pformat

import autobahn.twisted.websocket as _twisted_websocket
import autobahn.websocket.protocol as _protocol
from autobahn.util import hltype, hlval


def _lazy(formatter):
    """A stand-in for ``formatter`` that defers the work until the result is shown."""

    class Lazy:
        __slots__ = ("_value",)

        def __init__(self, value, *args, **kwargs) -> None:
            self._value = value

        def __str__(self) -> str:
            return formatter(self._value)

        __repr__ = __format__ = lambda self, spec="": str(self)

    Lazy.__name__ = f"lazy_{formatter.__name__}"
    return Lazy


def install() -> None:
    """Make Autobahn's debug-only formatting lazy (idempotent)."""
    for module in (_protocol, _twisted_websocket):
        for name, formatter in (("pformat", pformat), ("hltype", hltype), ("hlval", hlval)):
            if hasattr(module, name):
                setattr(module, name, _lazy(formatter))


def protocol_with_options(factory, base: type) -> type:
    """A subclass of ``base`` holding ``factory``'s protocol options as class attributes.

    Options that are functions (``perMessageCompressionAccept``) are wrapped in
    ``staticmethod``: as plain class attributes they would become methods and be
    called with the protocol as an extra first argument.
    """
    options = {}
    for name in base.CONFIG_ATTRS:
        value = getattr(factory, name)
        options[name] = staticmethod(value) if callable(value) else value
    options["CONFIG_ATTRS"] = ()  # nothing left to copy per connection
    return type(base.__name__, (base,), options)
