"""The ``file`` field of a ``multipart/form-data`` body (RFC 7578), read a piece at a time.

Twisted keeps a large request body in a temporary file; this reads that file in
64 KiB pieces and yields the field's bytes as they come, so an upload is never
whole in memory. Only what an upload needs is understood: the boundary, each
part's ``Content-Disposition`` (field name and file name) and the part's bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import unquote

from chatd import errors

READ_SIZE = 64 * 1024
MAX_PART_HEADERS = 16 * 1024

_BOUNDARY = re.compile(r'boundary=(?:"([^"]{1,70})"|([^\s;"]{1,70}))', re.IGNORECASE)
_NAME = re.compile(rb'(?:^|;)\s*name="((?:[^"\\]|\\.)*)"', re.IGNORECASE)
_FILENAME = re.compile(rb'(?:^|;)\s*filename="((?:[^"\\]|\\.)*)"', re.IGNORECASE)
_FILENAME_STAR = re.compile(rb"(?:^|;)\s*filename\*=(?:UTF-8|utf-8)''([^;\s]+)")


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a multipart/form-data Content-Type, or 415."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    found = _BOUNDARY.search(content_type or "")
    if media != "multipart/form-data" or not found:
        raise errors.ApiError(415, "unsupported_media_type", "Send multipart/form-data with a file field named file.")
    return (found.group(1) or found.group(2)).encode("latin-1")


class _Body:
    """A buffered reader over the body that can look for a delimiter."""

    def __init__(self, body) -> None:
        self._body = body
        self.buffer = b""
        self.ended = False

    def fill(self) -> bool:
        if self.ended:
            return False
        data = self._body.read(READ_SIZE)
        if not data:
            self.ended = True
            return False
        self.buffer += data
        return True

    def until(self, delimiter: bytes, limit: int) -> bytes:
        """The bytes up to ``delimiter`` (consumed too); 400 if not found within ``limit`` bytes."""
        while True:
            at = self.buffer.find(delimiter)
            if at >= 0:
                found, self.buffer = self.buffer[:at], self.buffer[at + len(delimiter):]
                return found
            if len(self.buffer) > limit or not self.fill():
                raise errors.invalid("The multipart body is malformed.")

    def stream_until(self, delimiter: bytes) -> Iterator[bytes]:
        """The bytes up to ``delimiter``, yielded as they are read; 400 if the body ends first."""
        keep = len(delimiter) - 1  # a delimiter may straddle two reads
        while True:
            at = self.buffer.find(delimiter)
            if at >= 0:
                if at:
                    yield self.buffer[:at]
                self.buffer = self.buffer[at + len(delimiter):]
                return
            if len(self.buffer) > keep:
                yield self.buffer[:-keep]
                self.buffer = self.buffer[-keep:]
            if not self.fill():
                raise errors.invalid("The multipart body ends in the middle of a part.")


def _unquote(value: bytes) -> bytes:
    return re.sub(rb"\\(.)", rb"\1", value)


def _file_name(disposition: bytes) -> str:
    star = _FILENAME_STAR.search(disposition)
    if star:
        return unquote(star.group(1).decode("latin-1"), encoding="utf-8", errors="replace")
    plain = _FILENAME.search(disposition)
    # Browsers send the name as raw UTF-8 (quotes as %22); a missing name is an empty one.
    return _unquote(plain.group(1)).decode("utf-8", "replace") if plain else ""


def file_field(body, content_type: str | None, field: bytes = b"file") -> tuple[str, Iterator[bytes]]:
    """(file name, its bytes as an iterator) of the field named ``field``; 400 if there is none.

    Parts before it are skipped; the iterator ends at the part's end, and the
    caller must consume it before anything else is read from ``body``.
    """
    boundary = boundary_of(content_type)
    reader = _Body(body)
    reader.until(b"--" + boundary, MAX_PART_HEADERS)  # the preamble, if any
    delimiter = b"\r\n--" + boundary
    while True:
        while len(reader.buffer) < 2 and reader.fill():
            pass
        if reader.buffer[:2] == b"--" or len(reader.buffer) < 2:
            break  # the closing delimiter (or a truncated body): no more parts
        reader.until(b"\r\n", MAX_PART_HEADERS)  # the rest of the delimiter line
        if reader.buffer[:2] == b"\r\n":
            headers, reader.buffer = b"", reader.buffer[2:]
        else:
            headers = reader.until(b"\r\n\r\n", MAX_PART_HEADERS)
        disposition = b""
        for line in headers.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-disposition":
                disposition = value.strip()
        found = _NAME.search(disposition)
        if found and _unquote(found.group(1)) == field:
            return _file_name(disposition), reader.stream_until(delimiter)
        for _ in reader.stream_until(delimiter):
            pass  # another field: skipped
    raise errors.invalid("The upload has no file field.", {field.decode(): "required"})
