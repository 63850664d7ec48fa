"""The fast reader of client text frames: exact payloads, and everything unusual left to Autobahn."""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from chatd.web.speedups.fastframes import split_text_frames, unmask


def client_frame(payload: bytes, opcode: int = 1, fin: bool = True, masked: bool = True, mask: bytes | None = None) -> bytes:
    """A client frame as RFC 6455 builds it (masked, with the shortest length encoding)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    size = len(payload)
    flag = 0x80 if masked else 0
    if size < 126:
        head += bytes([flag | size])
    elif size < 65536:
        head += bytes([flag | 126]) + size.to_bytes(2, "big")
    else:
        head += bytes([flag | 127]) + size.to_bytes(8, "big")
    if not masked:
        return head + payload
    mask = mask or os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class SplitTests(SynchronousTestCase):
    def test_unmask_matches_the_rfc(self):
        """Unmasking gives back the payload for every length, including the empty one."""
        for size in (0, 1, 3, 4, 5, 125, 126, 1000):
            payload = os.urandom(size)
            frame = client_frame(payload, mask=b"\x01\x02\x03\x04")
            self.assertEqual(unmask(frame[-size:] if size else b"", b"\x01\x02\x03\x04"), payload)

    def test_several_complete_frames(self):
        """Back-to-back text frames (short and 16-bit lengths) are all read, in order."""
        payloads = [b'{"type":"ping"}', "é€😀".encode() * 50, b"x" * (70_000 // 2)]
        data = b"".join(client_frame(p) for p in payloads)
        self.assertEqual(split_text_frames(data, 64 * 1024), (payloads, len(data)))

    def test_stops_at_anything_else(self):
        """Control, binary, fragmented, unmasked and 64-bit-length frames stop the fast path there."""
        text = client_frame(b'{"type":"ping"}')
        for other in (client_frame(b"", opcode=9), client_frame(b"\x00", opcode=2),
                      client_frame(b"part", fin=False), client_frame(b"{}", masked=False),
                      client_frame(b"x" * 70_000)):
            payloads, consumed = split_text_frames(text + other + text, 100_000)
            self.assertEqual((payloads, consumed), ([b'{"type":"ping"}'], len(text)))

    def test_partial_frame_is_left(self):
        """An incomplete frame at the end is left for the general parser, byte for byte."""
        first, second = client_frame(b'{"a":1}'), client_frame(b'{"b":2}')
        data = first + second[:-3]
        self.assertEqual(split_text_frames(data, 1000), ([b'{"a":1}'], len(first)))
        self.assertEqual(split_text_frames(second[:1], 1000), ([], 0))

    def test_oversize_and_invalid_utf8_are_left(self):
        """A payload over the limit or not UTF-8 is left to Autobahn (which closes 1009 / 1007)."""
        self.assertEqual(split_text_frames(client_frame(b"x" * 200), 100), ([], 0))
        self.assertEqual(split_text_frames(client_frame(b"\xff\xfe"), 100), ([], 0))
