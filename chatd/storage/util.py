"""Small helpers shared by the store implementations."""

from __future__ import annotations

import functools

from twisted.internet.defer import Deferred


def returns_deferred(method):
    """Make an ``async def`` method return a Deferred, as IStore promises (STYLE.md §3)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs) -> Deferred:
        return Deferred.fromCoroutine(method(self, *args, **kwargs))

    return wrapper
