"""Which chatd processes are alive: a lease per process in Redis (SPEC.md: when a chatd dies, the users it
alone served go offline everywhere within 15 s).

One hash, ``chatd:nodes``, maps each process to the moment its lease ends, on
Redis's own clock (so the processes' clocks need not agree). A process renews
its lease every few seconds; any process asking who is alive also removes the
leases that ended, in the same script, so a dead process is forgotten once.
"""

from __future__ import annotations

LEASE_MS = 10_000  # a process silent this long is dead
NODES = b"chatd:nodes"

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# → 1 if our lease was still running, 0 if it had ended or never existed (the others may have
# dropped us: say again who is here).
_RENEW = _NOW + """
local ends = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
redis.call('HSET', KEYS[1], ARGV[1], now + tonumber(ARGV[2]))
if ends and ends >= now then return 1 end
return 0
"""

# → the processes whose lease runs; the ended ones are removed.
_LIVE = _NOW + """
local live = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) >= now then
    live[#live + 1] = all[i]
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return live
"""


class RedisLeases:
    """The leases, over a ``chatd.bus.redis.RedisBus`` (its ``eval`` and ``execute``)."""

    def __init__(self, bus) -> None:
        self._bus = bus

    def renew(self, node: str):
        """Deferred: True if our lease had not ended."""
        return self._bus.eval(_RENEW, [NODES], [node, LEASE_MS]).addCallback(lambda kept: kept == 1)

    def live(self):
        """Deferred: the names of the processes alive now."""
        return self._bus.eval(_LIVE, [NODES], []).addCallback(
            lambda names: {name.decode() if isinstance(name, bytes) else name for name in names})

    def release(self, node: str):
        """We stop: the others forget us at their next look, without waiting for the lease to end."""
        return self._bus.execute("HDEL", NODES, node)
