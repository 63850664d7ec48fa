"""Sending messages (SPEC.md: the ``message`` frame, ``ack``, Guarantees).

A message is handed to the writer, which stores it with the room's next seq;
only then is it broadcast (by the writer's ``on_stored``, the events' job) and
acked, the sender's copy and ack in one write. A ``client_id`` already stored
is acked again with its original seq and not broadcast.
"""

from __future__ import annotations

from chatd.chat import frames
from chatd.chat.connection import ChatSocket, require_joined


class Messages:
    """The ``message`` frame."""

    def __init__(self, registry, writer, clock, metrics, refuse) -> None:
        self._registry = self.registry = registry
        self._writer = writer
        self._clock = clock
        self._metrics = metrics
        self._refuse = refuse  # answers a failure on the socket (chatd.chat.dispatch.refuse)

    def send(self, sock: ChatSocket, frame: frames.Send, reply_to: int | None = None, stored=None) -> None:
        """Store and deliver; a reply (chatd.chat.threads) comes with its root's seq, and ``stored`` is
        called with each newly stored reply."""
        require_joined(self._registry, sock, frame.room, frame.client_id)
        arrived = self._clock.seconds()
        written = self._writer.submit(frame.room, sock.user_id, sock.username, frame.text, frame.client_id,
                                      origin=sock, reply_to=reply_to)
        written.addCallbacks(
            # A new message's ack went out with its broadcast; a resend is acked here.
            lambda result: self._acked(sock, frame, result, arrived, stored),
            lambda failure: self._refuse(sock, failure.value, frame.client_id),
        )

    def _acked(self, sock: ChatSocket, frame: frames.Send, result, arrived: float, stored=None) -> None:
        message, resent = result
        if resent:
            sock.send(frames.ack_frame(message, frame.client_id))
        else:
            self._metrics.delivery_latency.observe(self._clock.seconds() - arrived)
            if stored is not None:
                stored(message)
