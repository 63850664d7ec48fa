"""Files shared in rooms (SPEC.md: POST /api/rooms/{room}/files, GET /api/files/{id}).

An upload is stored a GridFS chunk at a time as its bytes are read, with the
type sniffed from its first bytes (what the client claims is ignored) and the
name cut to a plain base name; then the room gets a ``file`` message in ``seq``
order like any other. Only members of the room may upload to it or download
from it.
"""

from __future__ import annotations

import gc
import itertools
from collections.abc import Iterable
from datetime import datetime, timezone

from chatd import errors
from chatd.accounts.auth import Principal
from chatd.chat.frames import ROOM
from chatd.files.sniffing import SNIFF_BYTES, clean_name, sniff
from chatd.ratelimit import KeyedRateLimiter, Rate
from chatd.rooms.access import READ, WRITE, allows
from chatd.storage.records import FileRecord, StoreUnavailable

WRITE_SIZE = 255 * 1024  # one GridFS chunk per store write
RELEASE_EVERY = 8  # chunks (2 MiB) between collections of the cycles they leave (see release_chunks)


def release_chunks() -> None:
    """Free the file chunks left in reference cycles by txmongo's GridFS reads and writes.

    Each GridFS chunk written or read leaves a cycle (closures and Deferreds)
    holding its 255 KiB. chatd runs the collector rarely, for chat latency
    (chatd.service), so those cycles would pile up by the hundred megabytes
    during a large transfer; collecting the young generations every few
    chunks keeps a transfer's memory to a few chunks, at a cost of well under
    a millisecond each time.
    """
    gc.collect(1)


def _megabytes(size: int) -> str:
    """A size as people read it: 26214400 → "25 MB" (binary megabytes, as file managers show them)."""
    megabytes = size / (1024 * 1024)
    return f"{megabytes:.0f} MB" if megabytes >= 10 else f"{megabytes:.1f} MB"


def file_view(record: FileRecord) -> dict:
    return {"id": record.id, "name": record.name, "size": record.size, "content_type": record.content_type,
            "url": f"/api/files/{record.id}"}


class Files:
    """Uploads and downloads; ``writer`` is the MessageWriter that gives the room its file message.

    Each user may upload ``quota`` bytes an hour (refilled continuously), counted as the bytes
    arrive, so parallel uploads share it; past it an upload is refused with 429 and ``refused``
    counts it for /metrics.
    """

    def __init__(self, store, writer, clock, max_upload: int, access, quota: int = 1 << 30,
                 refused=lambda limit: None) -> None:
        self._store = store
        self._access = access  # chatd.rooms.access.RoomAccess
        self._writer = writer
        self._clock = clock
        self.max_upload = max_upload
        self._quota = KeyedRateLimiter(Rate(quota / 3600, quota), clock)
        self._refused = refused

    def _spend_quota(self, user_id: str, size: int) -> None:
        wait = self._quota.take(user_id, size) if size else self._quota.wait(user_id)
        if wait:
            self._refused("upload_quota")
            raise errors.rate_limited(wait, "You have uploaded as much as allowed for now; try again later.")

    async def check_upload(self, principal: Principal, room: str) -> None:
        """Who may upload there, checked before the body is read: 404 for a malformed room or a private or
        direct one the user is not a member of, 403 for another non-member, 429 when their quota is spent."""
        if not ROOM.fullmatch(room):
            raise errors.not_found("No such room.")
        await self._access.require(principal.user, room, WRITE)
        self._spend_quota(principal.user.id, 0)

    async def upload(self, principal: Principal, room: str, name: str, chunks: Iterable[bytes]) -> dict:
        """Store the file and post its message; ``{"file": view}``."""
        await self.check_upload(principal, room)
        record = await self._store_bytes(principal, room, clean_name(name), iter(chunks))
        view = file_view(record)
        try:
            await self._writer.submit(room, principal.user.id, principal.user.username, None, None, file=view)
        except Exception:
            await self.remove(record.id)  # no message, no file
            raise
        return {"file": view}

    async def _store_bytes(self, principal: Principal, room: str, name: str, chunks) -> FileRecord:
        head = b""
        for chunk in chunks:  # enough of the start to tell the type
            head += chunk
            if len(head) >= SNIFF_BYTES:
                break
        uploaded_at = datetime.fromtimestamp(self._clock.seconds(), timezone.utc)
        writer = self._store.new_file(name, sniff(head[:SNIFF_BYTES]), room, principal.user.id, uploaded_at)
        try:
            size, pending, pending_size, written = 0, [], 0, 0
            for chunk in itertools.chain([head], chunks):
                size += len(chunk)
                if size > self.max_upload:
                    raise errors.too_large(f"Files are limited to {_megabytes(self.max_upload)}.")
                self._spend_quota(principal.user.id, len(chunk))
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size >= WRITE_SIZE:
                    await writer.write(b"".join(pending))
                    pending, pending_size = [], 0
                    written += 1
                    if written % RELEASE_EVERY == 0:
                        release_chunks()
            if pending:
                await writer.write(b"".join(pending))
            return await writer.close()
        except BaseException:
            try:
                await writer.abort()
            except StoreUnavailable:
                pass  # the store is away: the unreferenced chunks are harmless
            raise

    async def open(self, principal: Principal, file_id: str):
        """(FileRecord, reader) of a file this user may download; 404 or 403 otherwise."""
        record = await self._store.file_info(file_id)
        if record is None:
            raise errors.not_found("No such file.")
        standing = await self._access.standing(principal.user.id, principal.is_admin, record.room)
        if not allows(standing, READ):
            raise errors.not_found("No such file.")  # a private or direct room's file: as if it did not exist
        if not allows(standing, WRITE):
            raise errors.forbidden("Only members of the room may download its files.")
        return record, await self._store.read_file(file_id)

    async def remove(self, file_id: str) -> None:
        await self._store.delete_file(file_id)

