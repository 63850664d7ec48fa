"""Who may open another WebSocket: caps per client address and per user, and a handshake rate.

One account opening thousands of sockets (or one address opening them for many
accounts) would use up the process's file descriptors and every other user's
ability to connect; each handshake also costs a token check and presence
events. So a connection is admitted in two steps: by its address when its
handshake arrives (a rate of handshakes, and a cap on the sockets the address
holds, pending ones included), and by its user once the token is checked (a cap
on the user's sockets). Each refusal is a 429 with ``Retry-After`` and counted
in ``/metrics``; :meth:`Admission.release` gives the places back when the
connection ends, however it ends.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from chatd import errors
from chatd.ratelimit import KeyedRateLimiter, Rate, address_key


@dataclass(frozen=True)
class SocketLimits:
    """The caps; see ``--max-sockets-per-user``, ``--max-sockets-per-address``, ``--handshake-rate``."""

    per_user: int = 32
    per_address: int = 256
    handshake_rate: Rate = Rate(10, 50)


class Ticket:
    """One connection's places: its address's, and its user's once admitted."""

    __slots__ = ("address", "user_id", "released")

    def __init__(self, address: str) -> None:
        self.address = address
        self.user_id: str | None = None
        self.released = False


class Admission:
    """Counts sockets per address and per user; refuses past the caps (see the module docstring)."""

    def __init__(self, limits: SocketLimits, clock, refused) -> None:
        self._limits = limits
        self._handshakes = KeyedRateLimiter(limits.handshake_rate, clock)
        self._refused = refused  # refused(limit_name): counts a refusal for /metrics
        self._by_address: Counter[str] = Counter()
        self._by_user: Counter[str] = Counter()

    def admit(self, host: str | None) -> Ticket:
        """A handshake from ``host`` arrived: its ticket, or 429."""
        address = address_key(host)
        wait = self._handshakes.take(address)
        if wait:
            self._refuse("handshake_rate", wait)
        if self._by_address[address] >= self._limits.per_address:
            self._refuse("sockets_per_address", 5)
        self._by_address[address] += 1
        return Ticket(address)

    def admit_user(self, ticket: Ticket, user_id: str) -> None:
        """The handshake's token belongs to ``user_id``: admitted, or 429 (the ticket is then released)."""
        if self._by_user[user_id] >= self._limits.per_user:
            self.release(ticket)
            self._refuse("sockets_per_user", 5)
        ticket.user_id = user_id
        self._by_user[user_id] += 1

    def release(self, ticket: Ticket) -> None:
        """The connection ended (or was refused): its places are free again. Safe to call twice."""
        if ticket.released:
            return
        ticket.released = True
        _decrement(self._by_address, ticket.address)
        if ticket.user_id is not None:
            _decrement(self._by_user, ticket.user_id)

    def _refuse(self, limit: str, retry_after: float):
        self._refused(limit)
        raise errors.rate_limited(retry_after, REASONS[limit])


# What a refused client is told (chatd's words; nothing of what it sent).
REASONS = {
    "handshake_rate": "Too many connections opened from your address; try again shortly.",
    "sockets_per_address": "Too many open connections from your address.",
    "sockets_per_user": "Too many open connections for this account; close some first.",
}


def _decrement(counter: Counter, key: str) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]
