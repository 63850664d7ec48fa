"""The JWT signing secret: given, or generated once into the data dir (mode 0600)."""

from __future__ import annotations

import base64
import os
import secrets

from twisted.logger import Logger

from chatd.storage import datadir

MIN_BYTES = 32
FILE_NAME = "jwt-secret"
_log = Logger()


def load_or_create(data_dir: str) -> bytes:
    """Read ``data_dir/jwt-secret``, creating it with 48 random bytes the first time."""
    path = datadir.prepare(data_dir) / FILE_NAME  # an older chatd's readable secret is restricted there
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(base64.urlsafe_b64encode(secrets.token_bytes(48)).decode("ascii") + "\n")
        _log.info("generated a new token secret in {path}", path=str(path))
    secret = path.read_bytes().strip()
    if len(secret) < MIN_BYTES:
        raise ValueError(f"{path} holds fewer than {MIN_BYTES} bytes; delete it to generate a new one")
    return secret
