"""Room and account events shared by every chatd on the bus (SPEC.md: Several processes and machines).

:class:`BusEvents` has the methods of :class:`chatd.chat.events.LocalEvents`:
each event is delivered to this process's sockets at once, and announced on
the bus for the others, after the store write it follows. What the others
announce is applied here as if it had happened here (:mod:`chatd.bus.incoming`). Announcements of one reactor turn go out together, in
one pipelined write, a room's messages of one write batch in one event.

While the bus is down, each process still serves its own sockets, and reads
the messages others store from the store about once a second (only rooms some
socket here joined); when the bus is back, it reads what it missed, tells
the others which rooms it wrote to meanwhile, so they read those too, and sends
the edits, deletions, membership and account events it kept meanwhile (typing,
reads and presence are of the moment: those are dropped). Cached messages are
read again from the store, for they may miss the others' edits.
"""

from __future__ import annotations

from collections import deque

from twisted.internet.defer import ensureDeferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from chatd.bus import wire
from chatd.bus.incoming import Incoming
from chatd.bus.leases import RedisLeases
from chatd.bus.presence import ClusterPresence
from chatd.chat.events import LocalEvents
from chatd.chat.sequencer import Sequencer
from chatd.rooms.recheck import drop_non_members
from chatd.storage.records import StoreUnavailable

POLL_EVERY = 1.0  # seconds between store reads while the bus is down
# Events that change what the others show (history, membership, sockets to close) wait while the bus
# is down and go out when it returns; typing, reads and presence are of the moment and are dropped.
KEPT_WHILE_DOWN = frozenset({"mn", "e", "d", "th", "rx", "p", "ml", "tr", "pc", "ub", "ud", "ur", "iv", "mb", "rc"})
MAX_KEPT = 10_000


class BusEvents:
    """Local delivery plus the bus (see the module docstring).

    ``connect(on_message, on_state)`` builds the bus (``chatd.bus.redis.RedisBus``), and
    ``leases(bus)`` the processes' leases on it. The room sequencer (``self.sequencer``, which
    delivers through these events and is told of the others' messages by them) and the
    cluster's presence (``self.cluster_presence``, which announces through them and is told what the
    others announce) are built here too: each side is given the other by its constructor.
    """

    _log = Logger()

    def __init__(self, local: LocalEvents, store, registry, rooms, node: str, clock, connect,
                 leases=RedisLeases) -> None:
        self._local = local
        self._store = store
        # A membership changed elsewhere: the cached user here (their rooms) is stale at once.
        self._forget = getattr(store, "forget_user", lambda user_id: None)
        self.sequencer = self._sequencer = Sequencer(store, rooms, self, clock)
        self._registry = registry
        self._rooms = rooms
        self._node = node
        self._clock = clock
        # The bus is built first (presence needs its leases), so its messages reach _incoming through a lambda.
        self.bus = connect(lambda channel, payload: self._incoming.received(channel, payload), self._state)
        self.cluster_presence = self._presence = ClusterPresence(registry, local, self._send, leases(self.bus),
                                                                 node, clock)
        self._incoming = Incoming(node, local, registry, rooms, self._sequencer, self._presence, self._forget,
                                  self._catch_up)
        self._outgoing: list[tuple[str, bytes]] = []
        self._kept: deque[bytes] = deque(maxlen=MAX_KEPT)  # KEPT_WHILE_DOWN events not sent yet
        self._messages: dict[str, list] = {}  # room → messages stored here this turn, to announce
        self._flush_call = None
        self._unannounced: set[str] = set()  # rooms written to while the bus was down
        self._poller = LoopingCall(self._poll)
        self._poller.clock = clock
        self.up = False

    # -- LocalEvents' methods: here at once, and on the bus --------------------

    def message_stored(self, entry, origin) -> None:
        self._local.message_stored(entry, origin)

    def message_acked(self, message, origin) -> None:
        self._local.message_acked(message, origin)

    def announce(self, message) -> None:
        self._messages.setdefault(message.room, []).append(wire.message_out(message))
        self._schedule()

    def mentioned(self, room, seq, author_id, author, text, user_ids) -> None:
        """Mentions go to the users' sockets on every process, whether or not it holds the room."""
        self._local.mentioned(room, seq, author_id, author, text, user_ids)
        self._send("mn", r=room, s=seq, u=author_id, a=author, x=text, m=list(user_ids))

    def message_edited(self, room, seq, text, edited_at) -> None:
        self._local.message_edited(room, seq, text, edited_at)
        self._send("e", r=room, s=seq, x=text, t=wire.moment_out(edited_at))

    def message_deleted(self, room, seq) -> None:
        self._local.message_deleted(room, seq)
        self._send("d", r=room, s=seq)

    def thread_updated(self, room, root, thread) -> None:
        self._local.thread_updated(room, root, thread)
        self._send("th", r=room, s=root, c=thread["replies"], t=wire.moment_out(thread["last_reply_at"]),
                   l=thread["last_reply_seq"])

    def reaction(self, room, seq, emoji, username, on, reactions=(), reactors=None) -> None:
        self._local.reaction(room, seq, emoji, username, on, reactions, reactors)
        self._send("rx", r=room, s=seq, e=emoji, a=username, o=on, rs=list(reactions), rn=reactors or {})

    def typing(self, room, user_id, username, typing) -> None:
        self._local.typing(room, user_id, username, typing)
        self._send("ty", r=room, u=user_id, a=username, y=typing)

    def read(self, room, user_id, username, seq) -> None:
        self._local.read(room, user_id, username, seq)
        self._send("rd", r=room, u=user_id, a=username, s=seq)

    def presence(self, room, user_id, username, event) -> None:
        self._local.presence(room, user_id, username, event)
        self._send("p", r=room, u=user_id, a=username, e=event)

    def member_left(self, room, user_id, username, reason=None) -> None:
        self._local.member_left(room, user_id, username, reason)
        self._send("ml", r=room, u=user_id, a=username, **({"why": reason} if reason else {}))

    def invited(self, user_id, room, view, by) -> None:
        self._local.invited(user_id, room, view, by)
        self._send("iv", u=user_id, r=room, v=view, b=by)

    def member_changed(self, room, username, event, role) -> None:
        self._local.member_changed(room, username, event, role)
        self._send("mb", r=room, a=username, e=event, o=role)

    def room_changed(self, room, view) -> None:
        self._local.room_changed(room, view)
        self._send("rc", r=room, v=view)

    def token_revoked(self, jti) -> None:
        self._local.token_revoked(jti)
        self._send("tr", j=jti)

    def password_changed(self, user_id, before=None) -> None:
        self._local.password_changed(user_id, before)
        self._send("pc", u=user_id, b=before)

    def user_banned(self, user_id) -> None:
        self._local.user_banned(user_id)
        self._send("ub", u=user_id)

    def user_deleted(self, user_id) -> None:
        self._local.user_deleted(user_id)
        self._send("ud", u=user_id)

    def user_renamed(self, user_id, username) -> None:
        self._local.user_renamed(user_id, username)
        self._send("ur", u=user_id, a=username)

    def server_stopping(self) -> None:
        self._local.server_stopping()
        self._presence.stopping()

    # -- announcing -----------------------------------------------------------

    def _send(self, kind: str, **fields) -> None:
        self._outgoing.append((kind, wire.encode(self._node, kind, **fields)))
        self._schedule()

    def _schedule(self) -> None:
        if self._flush_call is None:
            self._flush_call = self._clock.callLater(0, self._flush)

    def _flush(self) -> None:
        self._flush_call = None
        outgoing, self._outgoing = self._outgoing, []
        kept = [payload for kind, payload in outgoing if kind in KEPT_WHILE_DOWN]
        payloads = [payload for _, payload in outgoing]
        for room, messages in self._messages.items():
            payloads.append(wire.encode(self._node, "m", r=room, m=messages))
        rooms, self._messages = list(self._messages), {}
        if not self.up:
            self._unannounced.update(rooms)  # the others will be told to read them when the bus is back
            self._kept.extend(kept)
            return
        if self._kept:  # from before the bus went away: they go first
            payloads = [*self._kept, *payloads]
            kept = [*self._kept, *kept]
            self._kept.clear()
        channel = self.bus.channels[0]
        sent = self.bus.publish_many([(channel, batch) for batch in wire.batches(self._node, payloads)])
        sent.addErrback(self._not_sent, rooms, kept)

    def _not_sent(self, failure, rooms, kept) -> None:
        self._unannounced.update(rooms)
        self._kept = deque([*kept, *self._kept], maxlen=MAX_KEPT)
        self._log.warn("announcing on the bus failed ({why}); the others will read the store", why=failure.value)

    # -- the bus coming and going ---------------------------------------------

    def _state(self, up: bool) -> None:
        self.up = up
        if up:
            if self._poller.running:
                self._poller.stop()
            # What others announced while we were away is in the store: read it, room by room. Their
            # edits and deletions meanwhile may be missing from our cached messages: read those again.
            self._rooms.clear_caches()
            self._poll()
            if self._unannounced:
                rooms, self._unannounced = sorted(self._unannounced), set()
                self._send("cu", rooms=rooms)
            if self._kept:
                self._schedule()
        elif not self._poller.running:
            self._poller.start(POLL_EVERY, now=False)
        self._presence.bus_state(up)

    def _poll(self) -> None:
        rooms = self._registry.joined_rooms()
        # Removals made elsewhere meanwhile may be waiting there for the bus: read them first.
        checked = ensureDeferred(drop_non_members(self._store, self._registry, self._local, rooms, self._forget))
        checked.addErrback(self._not_caught_up, "the members of private rooms")
        checked.addCallback(lambda _: [self._catch_up(room) for room in rooms])

    def _catch_up(self, room: str) -> None:
        ensureDeferred(self._sequencer.catch_up(room)).addErrback(self._not_caught_up, room)

    def _not_caught_up(self, failure, room: str) -> None:
        if not failure.check(StoreUnavailable):  # the store is away: the next turn tries again
            self._log.failure("reading {room} from the store failed", failure, room=room)
