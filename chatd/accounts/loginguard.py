"""Budgets of failed logins per account that a stranger cannot spend for the owner.

Failed logins count twice: against the pair (account, client address), so one
address guessing one account's password is slowed at once, and against the
account across every address, so a guesser spread over many addresses is
slowed too. That account-wide budget is larger and does not apply to addresses
that have logged into the account successfully before: a stranger's failures,
however many, never lock the owner out from where they usually log in.
"""

from __future__ import annotations

from collections import OrderedDict

from chatd import errors
from chatd.ratelimit import KeyedRateLimiter, Rate

SPREAD = 5  # the account-wide budget is this many times a pair's
TRUSTED_PER_ACCOUNT = 8  # addresses remembered per account (the most recent successful ones)
ACCOUNTS_REMEMBERED = 100_000


class LoginGuard:
    """Decides whether a login attempt may check a password, and learns from the outcome."""

    def __init__(self, rate: Rate, clock) -> None:
        self._pairs = KeyedRateLimiter(rate, clock)
        self._accounts = KeyedRateLimiter(Rate(rate.per_second, rate.burst * SPREAD), clock)
        self._trusted: OrderedDict[str, OrderedDict[str, None]] = OrderedDict()

    def check(self, account: str, address: str) -> None:
        """429 when this address, or (from an address new to the account) the account, has spent its failures."""
        wait = self._pairs.wait(_pair(account, address))
        if not wait and not self._is_trusted(account, address):
            wait = self._accounts.wait(account)
        if wait:
            raise errors.rate_limited(wait)

    def failed(self, account: str, address: str) -> None:
        """A password was checked and was wrong."""
        self._pairs.take(_pair(account, address))
        self._accounts.take(account)

    def succeeded(self, account: str, address: str) -> None:
        """The right password: this address is the owner's from now on."""
        known = self._trusted.pop(account, None) or OrderedDict()
        known.pop(address, None)
        known[address] = None
        while len(known) > TRUSTED_PER_ACCOUNT:
            known.popitem(last=False)
        self._trusted[account] = known
        while len(self._trusted) > ACCOUNTS_REMEMBERED:
            self._trusted.popitem(last=False)

    def _is_trusted(self, account: str, address: str) -> bool:
        return address in self._trusted.get(account, ())


def _pair(account: str, address: str) -> str:
    return f"{account}\x00{address}"
