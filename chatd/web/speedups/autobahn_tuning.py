"""Speed-up: costs of Autobahn 26 that chatd avoids.

**What it reads.** (1) The module-level names ``pformat``, ``hltype`` and
``hlval`` that ``autobahn.websocket.protocol`` and ``autobahn.twisted.websocket``
import and call for their debug log lines: :func:`install` replaces them while
the speed-ups run, and :func:`uninstall` puts Autobahn's own back. (2)
``CONFIG_ATTRS``, the list of options Autobahn's private ``_connectionMade``
copies from the factory onto each protocol instance.
``tests/test_speedups_contract.py`` checks both on the installed Autobahn.

**Why it is worth it** (docs/PERFORMANCE.md, issue 3): about 0.8 ms less CPU
per handshake, and 15.3 → 14.3 KiB of memory per idle connection.

1. Autobahn formats the arguments of its debug log calls whether or not debug
   logging is on: ``_connectionMade`` pretty-prints every protocol option
   (~0.8 ms of CPU per handshake), and every frame received or sent calls
   ``hltype``/``hlval`` (colour-highlighted names, ~5 µs each). The stand-ins
   format only if the debug event is actually rendered.
2. ``_connectionMade`` copies ~40 options from the factory onto every protocol
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

# The modules whose debug formatting is made lazy, and the formatters they call.
MODULES = (_protocol, _twisted_websocket)
FORMATTERS = (("pformat", pformat), ("hltype", hltype), ("hlval", hlval))

_installs = 0  # services that have installed the stand-ins and not yet removed them
_originals: dict[tuple[object, str], object] = {}


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
    """Make Autobahn's debug-only formatting lazy, until as many :func:`uninstall` calls as installs."""
    global _installs
    _installs += 1
    if _installs > 1:
        return
    for module in MODULES:
        for name, formatter in FORMATTERS:
            if hasattr(module, name):
                _originals[module, name] = getattr(module, name)
                setattr(module, name, _lazy(formatter))


def uninstall() -> None:
    """Give Autobahn its own formatters back once the last service that installed the stand-ins is gone."""
    global _installs
    if _installs == 0:
        return
    _installs -= 1
    if _installs:
        return
    for (module, name), original in _originals.items():
        setattr(module, name, original)
    _originals.clear()


def installed() -> bool:
    """Whether Autobahn's debug formatting is lazy right now."""
    return _installs > 0


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
