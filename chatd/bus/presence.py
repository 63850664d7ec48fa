"""Presence across processes (SPEC.md: Several processes and machines).

A user is online on every chatd while any of their sockets is open on any of
them, and each socket sees one ``online`` when the user comes online anywhere
and one ``offline`` when their last socket anywhere closes.

Each process is the truth about its own sockets (its registry); what the
others hold travels on the bus: ``on`` and ``off`` when a user's first socket
opens or last socket closes on a process, and ``hi``, a process's whole list,
when it (re)joins the bus or learns the others forgot it. Every process keeps
the others' lists (:class:`RemoteView`), so "who is online" is answered from
memory, and tells its own sockets when a user's online state *as a whole*
changes: a user already online elsewhere who opens a socket here changes
nothing for anyone. Which processes are alive is kept in Redis as leases
(``chatd.bus.leases``): the lists of a process whose lease ended are dropped
by every other process, which tells its sockets that those users went
offline, within the lease and one look (about 12 s).
"""

from __future__ import annotations

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from chatd.bus.leases import LEASE_MS
from chatd.bus.remote_view import Remote, RemoteView

RENEW_EVERY = 3.0  # seconds between lease renewals (the lease lasts LEASE_MS)
LOOK_EVERY = 2.0  # seconds between looks at who is alive
GRACE = LEASE_MS / 1000  # after the bus returns, the others have this long to say who they hold


class ClusterPresence:
    """Presence with a bus: the methods of ``chatd.chat.presence.LocalPresence``, cluster-wide.

    ``announce(kind, **fields)`` puts an event on the bus (``BusEvents``); ``leases`` is a
    ``chatd.bus.leases.RedisLeases``; ``local`` tells this process's sockets.
    """

    _log = Logger()

    def __init__(self, registry, local, announce, leases, node: str, clock) -> None:
        self._registry = registry
        self._local = local
        self._announce = announce
        self._leases = leases
        self._node = node
        self._clock = clock
        self._view = RemoteView()
        self._up_since: float | None = None
        self._renewed_once = False  # the first renewal after the bus returns follows our own hi
        self._renewer = LoopingCall(self._renew)
        self._renewer.clock = clock
        self._looker = LoopingCall(self._look)
        self._looker.clock = clock

    # -- this process's sockets (Sessions) ---------------------------------------

    def came_online(self, user_id: str, username: str, rooms) -> None:
        """The user's first socket here opened."""
        self._announce("on", u=user_id, a=username, r=sorted(rooms))
        if not self._view.is_online(user_id):
            self._tell(user_id, username, rooms, "online")

    def went_offline(self, user_id: str, username: str, rooms) -> None:
        """The user's last socket here closed."""
        self._announce("off", u=user_id)
        if not self._view.is_online(user_id):
            self._tell(user_id, username, rooms, "offline")

    # -- who is online (the accounts' and the rooms' questions) -------------------

    def is_online(self, user_id: str) -> bool:
        return self._registry.is_online(user_id) or self._view.is_online(user_id)

    def online_user_ids(self) -> list[str]:
        return list(set(self._registry.online_user_ids()).union(self._view.user_ids()))

    def _room_user_ids(self, room: str) -> set[str]:
        return set(self._registry.online_member_ids(room)).union(self._view.room_user_ids(room))

    def online_members(self, room: str) -> list[str]:
        names = []
        for user_id in self._room_user_ids(room):
            here = self._registry.online_user(user_id)
            names.append(here.username if here is not None else self._view.user(user_id).username)
        return sorted(names)

    def online_count(self, room: str) -> int:
        return len(self._room_user_ids(room))

    # -- what the others say (BusEvents hands over the presence kinds) --------------

    def received(self, event: dict) -> None:
        node, kind = event["n"], event["k"]
        if kind == "on":
            self._changing([event["u"]], lambda: self._view.add(node, event["u"], event["a"], event["r"]))
        elif kind == "off":
            self._changing([event["u"]], lambda: self._view.remove(node, event["u"]))
        elif kind == "hi":
            users = event["users"]
            self._changing(set(self._view.users_of(node)) | set(users), lambda: self._replace(node, users))
            if event.get("ask"):
                self._say_hi(ask=False)
        self._view.heard(node, self._clock.seconds())

    def _replace(self, node: str, users: dict) -> None:
        self._view.drop(node)
        for user_id, (username, rooms) in users.items():
            self._view.add(node, user_id, username, rooms)

    def member_joined(self, user_id: str, room: str) -> None:
        self._view.joined(user_id, room)

    def member_left(self, user_id: str, room: str) -> None:
        self._view.left(user_id, room)

    def renamed(self, user_id: str, username: str) -> None:
        self._view.renamed(user_id, username)

    # -- telling this process's sockets -----------------------------------------------

    def _changing(self, user_ids, change) -> None:
        """Apply ``change`` to the view; tell the sockets here of every user whose state as a whole changed."""
        before = {user_id: self._whole(user_id) for user_id in user_ids}
        change()
        for user_id, was in before.items():
            now = self._whole(user_id)
            if was is None and now is not None:
                self._tell(user_id, now.username, now.rooms, "online")
            elif was is not None and now is None:
                self._tell(user_id, was.username, was.rooms, "offline")

    def _whole(self, user_id: str) -> Remote | None:
        here = self._registry.online_user(user_id)
        if here is not None:
            return Remote(here.username, set(here.rooms))
        return self._view.user(user_id)

    def _tell(self, user_id: str, username: str, rooms, event: str) -> None:
        for room in rooms:
            self._local.presence(room, user_id, username, event)

    # -- the bus and the leases --------------------------------------------------------

    def bus_state(self, up: bool) -> None:
        """The bus came (back) or went: on its return, renew the lease and say who is here, asking
        the others to do the same (their lists changed while we could not hear)."""
        for call in (self._renewer, self._looker):
            if call.running:
                call.stop()
        if not up:
            self._up_since = None
            return
        self._up_since = self._clock.seconds()
        self._renewed_once = False
        self._renewer.start(RENEW_EVERY, now=True)
        self._looker.start(LOOK_EVERY, now=False)
        self._say_hi(ask=True)

    def _say_hi(self, ask: bool) -> None:
        users = {}
        for user_id in self._registry.online_user_ids():
            here = self._registry.online_user(user_id)
            users[user_id] = [here.username, sorted(here.rooms)]
        self._announce("hi", users=users, ask=1 if ask else 0)

    def _renew(self) -> None:
        self._leases.renew(self._node).addCallbacks(self._renewed, self._failed, errbackArgs=("renewing the lease",))

    def _renewed(self, kept: bool) -> None:
        if not kept and self._renewed_once:
            self._say_hi(ask=False)  # our lease had ended: the others dropped us; tell them again
        self._renewed_once = True

    def _look(self) -> None:
        asked_at = self._clock.seconds()
        self._leases.live().addCallbacks(self._alive, self._failed, callbackArgs=(asked_at,),
                                         errbackArgs=("looking at the leases",))

    def _alive(self, live: set[str], asked_at: float) -> None:
        """Drop the lists of processes without a lease (unless they spoke after we asked, or the bus
        came back too recently for everyone to have renewed)."""
        if self._up_since is None or asked_at - self._up_since < GRACE:
            return
        for node in self._view.nodes():
            if node not in live and self._view.heard_at(node) < asked_at:
                self._changing(self._view.users_of(node), lambda node=node: self._view.drop(node))

    def _failed(self, failure, doing: str) -> None:
        self._log.info("{doing} failed: {why}", doing=doing, why=failure.value)

    def stopping(self) -> None:
        """This process stops: stop renewing, and give the lease back."""
        for call in (self._renewer, self._looker):
            if call.running:
                call.stop()
        self._leases.release(self._node).addErrback(self._failed, "giving the lease back")
