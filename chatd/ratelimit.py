"""Token buckets keyed by client address or account, on an injected clock."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from twisted.internet.interfaces import IReactorTime


@dataclass(frozen=True)
class Rate:
    """A refill rate in tokens per second and a burst size; ``per_second == 0`` means unlimited."""

    per_second: float
    burst: int

    @property
    def unlimited(self) -> bool:
        return self.per_second == 0

    @classmethod
    def parse(cls, text: str) -> "Rate":
        """Parse SPEC.md's ``"5/s,20"`` (also ``/m``), or ``"0"`` for no limit."""
        text = text.strip()
        if text == "0":
            return cls(0, 0)
        match = re.fullmatch(r"(\d+(?:\.\d+)?)/(s|m)\s*,\s*(\d+)", text)
        if not match:
            raise ValueError(f"expected RATE/s,BURST (for example 5/s,20) or 0, not {text!r}")
        amount, unit, burst = float(match[1]), match[2], int(match[3])
        per_second = amount / 60 if unit == "m" else amount
        if per_second <= 0 or burst < 1:
            raise ValueError(f"rate and burst must be positive in {text!r}")
        return cls(per_second, burst)


def address_key(host: str | None) -> str:
    """The key that budgets a client address: the IPv4 address, or the /64 an IPv6 address is in.

    One IPv6 host is usually given a whole /64, so keying by the full address
    would hand each attacker billions of budgets.
    """
    if not host:
        return "unix"
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class TokenBucket:
    """One bucket: ``take()`` answers 0 when allowed, else the seconds to wait."""

    __slots__ = ("_rate", "_tokens", "_stamp")

    def __init__(self, rate: Rate, now: float) -> None:
        self._rate = rate
        self._tokens = float(rate.burst)
        self._stamp = now

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._stamp)
        self._tokens = min(self._rate.burst, self._tokens + elapsed * self._rate.per_second)
        self._stamp = now

    def take(self, now: float, amount: float = 1) -> float:
        """Spend ``amount`` tokens (0 answered) or none (the seconds until they would be there)."""
        if self._rate.unlimited:
            return 0.0
        self._refill(now)
        if self._tokens >= amount:
            self._tokens -= amount
            return 0.0
        return (amount - self._tokens) / self._rate.per_second

    def wait(self, now: float) -> float:
        """Seconds until a token is available (0: one is), without spending it."""
        if self._rate.unlimited:
            return 0.0
        self._refill(now)
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self._rate.per_second

    def full(self, now: float) -> bool:
        self._refill(now)
        return self._tokens >= self._rate.burst


class KeyedRateLimiter:
    """A bucket per key; full buckets are forgotten so memory stays bounded by active keys."""

    def __init__(self, rate: Rate, clock: IReactorTime, prune_at: int = 10_000) -> None:
        self._rate = rate
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._prune_at = prune_at

    def take(self, key: str, amount: float = 1) -> float:
        """Spend ``amount`` tokens for ``key``: 0 if allowed, else the seconds until they are there."""
        if self._rate.unlimited:
            return 0.0
        now = self._clock.seconds()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._prune_at:
                self._prune(now)
            bucket = self._buckets[key] = TokenBucket(self._rate, now)
        return bucket.take(now, amount)

    def wait(self, key: str) -> float:
        """Seconds until ``key`` may spend a token (0: now), without spending one."""
        bucket = self._buckets.get(key)
        return 0.0 if bucket is None else bucket.wait(self._clock.seconds())

    def _prune(self, now: float) -> None:
        for key in [key for key, bucket in self._buckets.items() if bucket.full(now)]:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)
