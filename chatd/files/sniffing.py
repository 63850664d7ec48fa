"""What a file is and what it is called: its type from its first bytes, and a safe base name.

What the client claims is ignored: the type comes from the first bytes (PNG,
JPEG, GIF, WebP, PDF, archives, audio and video containers, else UTF-8 text,
else octet-stream), and the name is cut to its base name without control or
format characters (SPEC.md, Details: Files).
"""

from __future__ import annotations

import re
import unicodedata

SNIFF_BYTES = 8 * 1024
MAX_NAME = 255

# Types recognised by their first bytes. Only these raster images are shown inline by
# browsers; anything else (SVG and HTML included) is served as an attachment.
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_SIGNATURES = [
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
    (b"OggS", "audio/ogg"),
    (b"ID3", "audio/mpeg"),
    (b"fLaC", "audio/flac"),
    (b"\x1aE\xdf\xa3", "video/webm"),
]


def sniff(head: bytes) -> str:
    """The content type of a file from its first bytes (up to SNIFF_BYTES)."""
    for signature, content_type in _SIGNATURES:
        if head.startswith(signature):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE"):
        return "image/webp" if head[8:12] == b"WEBP" else "audio/wav"
    if head[4:8] == b"ftyp":
        return "video/mp4"
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
            return "text/plain; charset=utf-8"
        except UnicodeDecodeError as e:
            if e.start >= len(head) - 3:  # a character cut by the end of the sample
                return "text/plain; charset=utf-8"
    return "application/octet-stream"


def clean_name(raw: str) -> str:
    """A file name reduced to its base name, without control characters (SPEC.md, Details: Files)."""
    base = re.split(r"[/\\]", raw)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    if base in ("", ".", ".."):
        base = "file"
    return base[:MAX_NAME]
