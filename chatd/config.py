"""chatd's settings as typed values, built from options and the environment (see ``chatd.tap``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from chatd.ratelimit import Rate
from chatd.web.proxies import TrustedProxies


def _packaged_static() -> str:
    """``www/`` as installed into the package (setup.py), or beside it in a checkout."""
    here = Path(__file__).resolve().parent
    installed = here / "www"
    return str(installed if installed.is_dir() else here.parent / "www")


PACKAGED_STATIC = _packaged_static()


@dataclass(frozen=True)
class Config:
    listen: list[str] = field(default_factory=lambda: ["tcp:8080"])
    mongo: str | None = None
    data_dir: str = "./chatd-data"
    jwt_secret: bytes | None = None
    token_ttl: int = 3600
    redis: str | None = None
    workers: int = 1  # chatd processes on this machine (chatd.workers): more than one share the sockets
    allowed_origins: list[str] = field(default_factory=list)
    trusted_proxies: TrustedProxies = TrustedProxies()  # whose X-Forwarded-* headers count (chatd.web.proxies)
    static: str = PACKAGED_STATIC
    max_upload: int = 26_214_400
    auth_rate: Rate = Rate(5, 20)
    socket_rate: Rate = Rate(20, 50)
    bcrypt_cost: int = 12
    # Caps on what one user or address may hold (docs/BEHAVIOUR.md, Limits).
    max_sockets_per_user: int = 32
    max_sockets_per_address: int = 256
    handshake_rate: Rate = Rate(10, 50)
    upload_quota: int = 1 << 30  # bytes per user per hour
    max_rooms_per_user: int = 500
    log_format: str = "text"  # or "json" (chatd.jsonlog); installed by twistd's logger, not by the service
    # Not options: how long one store operation may take before the API answers 503, and how
    # often sockets are pinged (a peer that does not answer within as long again is dropped).
    store_timeout: float = 5.0
    ping_interval: float = 20.0
    request_deadline: float = 30.0  # a request's head and (non-upload) body arrive within this
    # Switched from the environment only (docs/BEHAVIOUR.md, Operations): the speed-ups that read
    # library internals (chatd.web.speedups, CHATD_SPEEDUPS) and the collector's tuning (CHATD_GC_TUNING).
    speedups: bool = True
    gc_tuning: bool = True
