"""Each room's messages reach this process's sockets strictly in seq order, each once, wherever they were stored.

Messages come from three places: this process's writer, other chatd processes
(through the bus), and the store itself (messages whose announcement was lost,
or that other processes stored while the bus was down). :class:`Sequencer` is
the one place where a room's state advances: a message with the next seq is
appended and delivered; one that is already known is a duplicate (a message
stored here is then only acknowledged to its sender); one after a gap waits a
moment (``GAP_WAIT``) for the missing ones, which are then read from the store.
``catch_up`` reads whatever the store holds past what this process knows, and
delivers it, so a room never skips a message its sockets have not seen.
"""

from __future__ import annotations

from twisted.internet.defer import ensureDeferred
from twisted.logger import Logger

from chatd.chat.roomstate import PROBE, RoomState
from chatd.storage.records import StoreUnavailable

GAP_WAIT = 0.2  # seconds a message after a gap waits for the ones before it
MAX_WAITING = 1000  # messages held per room: past that they are read from the store instead


class _Waiting:
    """Messages of one room that arrived after a gap, by seq, with the sender's socket when stored here."""

    __slots__ = ("messages", "timer", "filling")

    def __init__(self) -> None:
        self.messages: dict[int, tuple] = {}  # seq → (message, origin, local)
        self.timer = None
        self.filling = False


class Sequencer:
    """Advances room states and delivers their messages in order (see the module docstring).

    Through ``events`` (chatd.chat.events): ``message_stored(entry, origin)`` delivers a message
    to the room's sockets (and its sender's ack), ``message_acked(message, origin)`` only acks,
    and ``announce(message)`` tells the other processes of a message stored here (with a bus).
    """

    _log = Logger()

    def __init__(self, store, rooms, events, clock) -> None:
        self._store = store
        self._rooms = rooms
        self._events = events
        self._clock = clock
        self._waiting: dict[str, _Waiting] = {}

    # -- where messages come from ---------------------------------------------

    def stored(self, message, origin) -> None:
        """The writer stored ``message`` (sent from ``origin``, maybe None)."""
        state = self._rooms.peek(message.room)
        if state is None:  # cannot happen while the writer holds the room busy; be safe anyway
            self._events.message_acked(message, origin)
            self._events.announce(message)
            return
        self._offer(state, message, origin, local=True)

    def received(self, room: str, messages) -> None:
        """Another process stored these messages of ``room`` (announced on the bus)."""
        state = self._rooms.peek(room)
        if state is None:
            return  # nobody here holds the room: it is read from the store when it is next used
        for message in sorted(messages, key=lambda m: m.seq):
            self._offer(state, message, None, local=False)

    async def current(self, name: str) -> RoomState:
        """The room's state, caught up with everything the store holds (delivered to its sockets)."""
        state = await self._rooms.get(name)
        state.busy += 1
        try:
            await self._read_store(state)
        finally:
            state.busy -= 1
        return state

    async def catch_up(self, name: str) -> None:
        """Read and deliver what the store holds past what this process knows of ``name``."""
        await self.current(name)

    # -- in order, once -------------------------------------------------------

    def _offer(self, state: RoomState, message, origin, local: bool) -> None:
        if message.seq <= state.last_seq:
            if local:  # read from the store and delivered already: its sender's ack, and the news
                self._events.message_acked(message, origin)
                self._events.announce(message)
            return
        if message.seq == state.last_seq + 1:
            self._advance(state, message, origin, local)
            self._drain(state)
            return
        waiting = self._waiting.setdefault(state.name, _Waiting())
        waiting.messages.setdefault(message.seq, (message, origin, local))
        if len(waiting.messages) > MAX_WAITING:
            self._fill_now(state.name)
        elif waiting.timer is None and not waiting.filling:
            waiting.timer = self._clock.callLater(GAP_WAIT, self._fill_now, state.name)

    def _advance(self, state: RoomState, message, origin, local: bool) -> None:
        entry = state.append(message)
        try:
            self._events.message_stored(entry, origin)
            if local:
                self._events.announce(message)
        except Exception:
            # The message is stored and known here: a failed delivery must not stop the next ones.
            self._log.failure("delivering message {seq} of {room} failed", seq=message.seq, room=state.name)

    def _drain(self, state: RoomState) -> None:
        waiting = self._waiting.get(state.name)
        if waiting is None:
            return
        while waiting.messages:
            following = waiting.messages.pop(state.last_seq + 1, None)
            if following is None:
                break
            self._advance(state, *following)
        for seq in [seq for seq in waiting.messages if seq <= state.last_seq]:
            message, origin, local = waiting.messages.pop(seq)
            if local:
                self._events.message_acked(message, origin)
                self._events.announce(message)
        if not waiting.messages:
            if waiting.timer is not None and waiting.timer.active():
                waiting.timer.cancel()
            if not waiting.filling:
                del self._waiting[state.name]

    def _fill_now(self, name: str) -> None:
        waiting = self._waiting.get(name)
        if waiting is None or waiting.filling:
            return
        if waiting.timer is not None and waiting.timer.active():
            waiting.timer.cancel()
        waiting.timer = None
        waiting.filling = True
        ensureDeferred(self._fill(name, waiting))

    async def _fill(self, name: str, waiting: _Waiting) -> None:
        try:
            await self.current(name)
        except StoreUnavailable:
            waiting.filling = False
            waiting.timer = self._clock.callLater(1.0, self._fill_now, name)  # the store is away: again soon
            return
        except Exception:
            self._log.failure("filling a gap in {room} from the store failed", room=name)
        waiting.filling = False
        state = self._rooms.peek(name)
        if state is not None:
            self._drain(state)
        if waiting.messages and self._waiting.get(name) is waiting and waiting.timer is None:
            waiting.timer = self._clock.callLater(GAP_WAIT, self._fill_now, name)
        elif not waiting.messages and self._waiting.get(name) is waiting:
            del self._waiting[name]

    async def _read_store(self, state: RoomState) -> None:
        """Append and deliver, in order, what the store holds past ``state.last_seq``."""
        while True:
            known = state.last_seq
            found = await self._store.get_messages(state.name, list(range(known + 1, known + PROBE + 1)))
            if not found:
                return
            waiting = self._waiting.get(state.name)
            for message in found:
                if message.seq <= state.last_seq:
                    continue  # arrived meanwhile, through the bus or the writer
                if message.seq != state.last_seq + 1:
                    break  # not stored yet (a seq being written): the next reading finds it
                held = waiting.messages.pop(message.seq, None) if waiting is not None else None
                if held is not None and held[2]:
                    self._advance(state, message, held[1], True)  # ours: its sender gets the ack
                else:
                    self._advance(state, message, None, False)
            if found[-1].seq <= known or state.last_seq == known:
                return
