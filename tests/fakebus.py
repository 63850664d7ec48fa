"""A bus in memory for several chat harnesses (several "processes" on one Clock and one store).

What Redis pub/sub does that matters to chatd: a published event reaches every
other subscriber a little later (on the next turn), never its publisher, and
is lost for whoever is not connected; the bus can go down and come back.
"""

from __future__ import annotations

from twisted.internet.defer import fail, succeed


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


class FakeBusNetwork:
    """Every process's connection; ``down()`` and ``back()`` take the whole bus away and bring it back."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.buses: list[FakeBus] = []
        self.up = True

    def connect(self, on_message, on_state) -> FakeBus:
        bus = FakeBus(self, on_message, on_state)
        self.buses.append(bus)
        self.clock.callLater(0, on_state, True)  # subscribed
        return bus

    def down(self) -> None:
        self.up = False
        for bus in self.buses:
            bus.on_state(False)

    def back(self) -> None:
        self.up = True
        for bus in self.buses:
            bus.on_state(True)
