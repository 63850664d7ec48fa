"""Speed-up: the common client frame read without Autobahn's general machinery.

**What it reads.** Autobahn's per-connection parser state: ``data`` (bytes
held for a frame), ``inside_message``, ``current_frame`` and ``state``; and it
hands the rest to the private ``WebSocketProtocol._dataReceived``. For a
message that did take Autobahn's path, ``onMessageEnd`` reads ``failedByMe``,
``message_data`` and ``message_is_binary`` and skips the ``fire("message")``
observer call Autobahn makes for each one (chatd registers no observer).
``tests/test_speedups_contract.py`` checks each of these on the installed Autobahn.

**Why it is worth it.** Almost every frame a chat client sends is one
complete, unfragmented, masked text frame of a few hundred bytes. Autobahn
handles it through a general state machine (frame and message callbacks, a
masker object per frame, statistics) costing a third of chatd's CPU per
message: reading such frames here took the rooms benchmark from 2.51× to 2.10×
the CPU of the Node peer, and skipping the observer call saved about 10% more
(docs/PERFORMANCE.md, issue 3). :func:`split_text_frames` takes the complete
such frames at the front of what was received and leaves everything else
(control frames, fragments, a partial frame, oversize frames, invalid UTF-8)
to Autobahn, byte for byte, so its checks and close codes still apply.
"""

from __future__ import annotations

from autobahn.websocket.protocol import WebSocketProtocol

_FIN_TEXT = 0x81  # FIN, no RSV bits, opcode 1 (text)
_MASKED = 0x80
_OPEN = WebSocketProtocol.STATE_OPEN


def unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR ``payload`` with the repeated 4-byte ``mask`` (RFC 6455, 5.3), as one big-integer operation."""
    size = len(payload)
    if not size:
        return b""
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(size, "big")


def split_text_frames(data: bytes, max_payload: int) -> tuple[list[bytes], int]:
    """The payloads of the complete masked text frames at the start of ``data``, and how many bytes they took.

    Stops at the first frame that is anything else, or incomplete: the caller
    hands ``data[consumed:]`` to the general parser.
    """
    payloads: list[bytes] = []
    at, size = 0, len(data)
    while at + 6 <= size:
        if data[at] != _FIN_TEXT or not data[at + 1] & _MASKED:
            break
        length, head = data[at + 1] & 0x7F, 2
        if length == 126:
            length, head = int.from_bytes(data[at + 2:at + 4], "big"), 4
        elif length == 127:
            break  # 64-bit lengths are far past any limit: Autobahn refuses them
        end = at + head + 4 + length
        if length > max_payload or end > size:
            break
        payload = unmask(data[at + head + 4:end], data[at + head:at + head + 4])
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError:
            break  # Autobahn closes with 1007
        payloads.append(payload)
        at = end
    return payloads, at


class FastFrames:
    """Mixin for :class:`chatd.web.ws.ChatProtocol`: complete text frames straight to the chat."""

    def dataReceived(self, data: bytes) -> None:
        # Only between frames: anything while Autobahn holds part of a frame takes its path.
        if self.state == _OPEN and not self.data and not self.inside_message and self.current_frame is None:
            # Both limits are 64 KiB in chatd (0, unlimited, would leave every frame to Autobahn).
            payloads, consumed = split_text_frames(data, min(self.maxFramePayloadSize, self.maxMessagePayloadSize))
            received = self.factory.chat.received
            for payload in payloads:
                if self.state != _OPEN:
                    return  # closed by a frame before (flooding): the rest is not read
                received(self._socket, payload, False)
            data = data[consumed:]
            if not data:
                return
        self._dataReceived(data)

    def onMessageEnd(self) -> None:
        # Autobahn's version also fires a "message" event to observers through txaio
        # (chatd registers none) and tracks timings (off): ~15 µs per frame for nothing.
        if not self.failedByMe:
            self.factory.chat.received(self._socket, b"".join(self.message_data), self.message_is_binary)
        self.message_data = None
