"""Reading the common client frame without Autobahn's general machinery.

Almost every frame a chat client sends is one complete, unfragmented, masked
text frame of a few hundred bytes. Autobahn handles it through a general state
machine (frame and message callbacks, a masker object per frame, statistics)
costing a third of chatd's CPU per message. :func:`split_text_frames` takes the
complete such frames at the front of what was received and leaves everything
else (control frames, fragments, a partial frame, oversize frames, invalid
UTF-8) to Autobahn, byte for byte, so its checks and close codes still apply.
"""

from __future__ import annotations

_FIN_TEXT = 0x81  # FIN, no RSV bits, opcode 1 (text)
_MASKED = 0x80


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
