"""A bus in memory for several chat harnesses (several "processes" on one Clock and one store).

What Redis pub/sub does that matters to chatd: a published event reaches every
other subscriber a little later (on the next turn), never its publisher, and
is lost for whoever is not connected; the bus can go down and come back. The
processes' leases (chatd.bus.leases) live beside it, on the same clock.
"""

from __future__ import annotations

from twisted.internet.defer import fail, succeed

from chatd.bus.leases import LEASE_MS


class BusUnavailable(Exception):
    """The bus is down."""


class FakeBus:
    """One process's connection to the network (what chatd.bus.redis.RedisBus offers the events)."""

    def __init__(self, network: "FakeBusNetwork", on_message, on_state) -> None:
        self._network = network
        self.on_message = on_message
        self.on_state = on_state
        self.published: list[tuple[bytes, bytes]] = []
        self.connected = True
        self.channels = (b"chatd:0:events",)

    @property
    def up(self) -> bool:
        return self._network.up and self.connected

    def publish_many(self, pairs):
        if not self.up:
            return fail(BusUnavailable("the bus is down"))
        self.published.extend(pairs)
        for other in self._network.buses:
            if other is not self and other.up:
                for channel, payload in pairs:
                    self._network.clock.callLater(0, other.on_message, channel, payload)
        return succeed(None)

    def publish(self, channel, payload):
        return self.publish_many([(channel, payload)])


class FakeLeases:
    """chatd.bus.leases.RedisLeases on the network's table (what its Lua scripts do)."""

    def __init__(self, bus: FakeBus) -> None:
        self._bus = bus
        self._network = bus._network

    def _now(self) -> float:
        return self._network.clock.seconds() * 1000

    def renew(self, node: str):
        if not self._bus.up:
            return fail(BusUnavailable("the bus is down"))
        ends = self._network.leases.get(node)
        self._network.leases[node] = self._now() + LEASE_MS
        return succeed(ends is not None and ends >= self._now())

    def live(self):
        if not self._bus.up:
            return fail(BusUnavailable("the bus is down"))
        table = self._network.leases
        for node in [node for node, ends in table.items() if ends < self._now()]:
            del table[node]
        return succeed(set(table))

    def release(self, node: str):
        if not self._bus.up:
            return fail(BusUnavailable("the bus is down"))
        self._network.leases.pop(node, None)
        return succeed(None)


class FakeBusNetwork:
    """Every process's connection; ``down()`` and ``back()`` take the whole bus away and bring it back."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.buses: list[FakeBus] = []
        self.leases: dict[str, float] = {}  # process → when its lease ends (ms on the clock)
        self.up = True

    def connect(self, on_message, on_state) -> FakeBus:
        bus = FakeBus(self, on_message, on_state)
        self.buses.append(bus)
        self.clock.callLater(0, on_state, True)  # subscribed
        return bus

    def leases_of(self, bus: FakeBus) -> FakeLeases:
        return FakeLeases(bus)

    def crash(self, bus: FakeBus) -> None:
        """That process dies: it hears nothing and says nothing more (its lease runs out)."""
        bus.connected = False

    def down(self) -> None:
        self.up = False
        for bus in self.buses:
            if bus.connected:
                bus.on_state(False)

    def back(self) -> None:
        self.up = True
        for bus in self.buses:
            if bus.connected:
                bus.on_state(True)
