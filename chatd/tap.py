"""``twistd chatd``: options (SPEC.md, Running) and the service they build.

Each option may also come from its environment variable; a command-line value
wins. Two switches (:data:`SWITCHES`: ``CHATD_SPEEDUPS``, ``CHATD_GC_TUNING``)
come from the environment only. Paths (``--data-dir``, ``--static``, an ``ssl:`` listener's key and
certificate files) are made absolute against the working directory here, at
start, so they mean the same wherever they are used later (the embedded store's
child runs in another directory). ``makeService`` only builds objects: sockets,
the store and threads start with the service.
"""

from __future__ import annotations

import os
import re
import sys

from twisted.python import usage

from chatd import jsonlog
from chatd.accounts.secret import MIN_BYTES
from chatd.bus.address import BadRedisUrl, RedisAddress
from chatd.config import PACKAGED_STATIC, Config
from chatd.ratelimit import Rate
from chatd.web.proxies import TrustedProxies
from chatd.workers.sockets import SHAREABLE_KINDS, kind_of

MAX_WORKERS = 64

# option name → (environment variable, default, help)
_PARAMETERS = {
    "mongo": ("CHATD_MONGO_URI", None, "a mongodb:// URI; when given, no embedded store is started"),
    "data-dir": ("CHATD_DATA_DIR", "./chatd-data", "where the embedded store and the generated secret live"),
    "jwt-secret": ("CHATD_JWT_SECRET", None, "HS256 signing secret, at least 32 bytes (default: generated once)"),
    "token-ttl": ("CHATD_TOKEN_TTL", "3600", "JWT lifetime in seconds"),
    "redis": ("CHATD_REDIS_URL", None, "redis://[:password@]host:port/db: the bus shared with other chatd processes (also rediss://, unix://)"),
    "workers": ("CHATD_WORKERS", "1", "chatd processes on this machine, sharing the listening sockets, store and bus"),
    "allowed-origins": ("CHATD_ALLOWED_ORIGINS", "", "comma-separated origins allowed for CORS and WebSocket"),
    "trusted-proxies": ("CHATD_TRUSTED_PROXIES", "",
                        "comma-separated proxy addresses/networks whose X-Forwarded-For/-Proto/-Host chatd believes"),
    "static": ("CHATD_STATIC", PACKAGED_STATIC, "directory served at /"),
    "max-upload": ("CHATD_MAX_UPLOAD", "26214400", "largest file upload in bytes"),
    "auth-rate": ("CHATD_AUTH_RATE", "5/s,20", "register/login/refresh per client address: rate,burst; 0 = off"),
    "socket-rate": ("CHATD_SOCKET_RATE", "20/s,50", "frames per WebSocket connection: rate,burst"),
    "bcrypt-cost": ("CHATD_BCRYPT_COST", "12", "bcrypt work factor (4-31)"),
    "max-sockets-per-user": ("CHATD_MAX_SOCKETS_PER_USER", "32", "open WebSockets one user may hold"),
    "max-sockets-per-address": ("CHATD_MAX_SOCKETS_PER_ADDRESS", "256",
                                "open WebSockets one client address (an IPv6 /64) may hold"),
    "handshake-rate": ("CHATD_HANDSHAKE_RATE", "10/s,50", "WebSocket handshakes per client address: rate,burst; 0 = off"),
    "upload-quota": ("CHATD_UPLOAD_QUOTA", "1073741824", "bytes one user may upload per hour"),
    "max-rooms-per-user": ("CHATD_MAX_ROOMS_PER_USER", "500", "rooms one user may be a member of"),
    "log-format": ("CHATD_LOG_FORMAT", "text", "text, or json: one JSON object per line (chatd.jsonlog)"),
}


# Switches read from the environment only: Config field → (variable, help). "0" turns one off.
SWITCHES = {
    "speedups": ("CHATD_SPEEDUPS", "the speed-ups that read Twisted's, Autobahn's and PyJWT's internals"),
    "gc_tuning": ("CHATD_GC_TUNING", "the garbage collector frozen after start-up, with higher thresholds"),
}


def switches(environ) -> dict[str, bool]:
    """The SWITCHES as ``Config`` fields: on unless their variable is ``0`` (``1`` or unset: on)."""
    values = {}
    for field, (variable, _) in SWITCHES.items():
        text = environ.get(variable, "").strip()
        if text not in ("", "0", "1"):
            raise usage.UsageError(f"{variable} must be 0 (off) or 1 (on), not {text!r}")
        values[field] = text != "0"
    return values


def _positive_int(name: str, text: str, low: int = 1, high: int | None = None) -> int:
    if not re.fullmatch(r"\d+", text.strip()) or int(text) < low or (high is not None and int(text) > high):
        bounds = f"{low}..{high}" if high is not None else f"at least {low}"
        raise usage.UsageError(f"--{name} must be a whole number, {bounds}, not {text!r}")
    return int(text)


# The file names an ``ssl:`` endpoint string may carry (Twisted's ``_parseSSL``, and
# ``caCertsDir`` as some endpoint plugins spell it).
_SSL_PATH_KEYS = frozenset({"privateKey", "certKey", "extraCertChain", "dhParameters", "caCertsDir"})


def _split_unescaped(text: str, separator: str, limit: int = -1) -> list[str]:
    """Split ``text`` at each ``separator`` not escaped by a backslash, keeping the escapes as written."""
    parts, current, escaped = [], "", False
    for character in text:
        if escaped:
            current, escaped = current + character, False
        elif character == "\\":
            current, escaped = current + character, True
        elif character == separator and limit != 0:
            parts.append(current)
            current, limit = "", limit - 1
        else:
            current += character
    return parts + [current]


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text, flags=re.DOTALL)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(":", "\\:")


def _absolute(cwd: str, path: str) -> str:
    return os.path.normpath(os.path.join(cwd, path))


def absolute_listen(description: str, cwd: str) -> str:
    """``description`` with the file names of an ``ssl:`` endpoint made absolute against ``cwd``.

    Everything else stays as written, byte for byte; a rewritten value is
    escaped the way Twisted's endpoint parser reads it (``\\:`` for a colon).
    """
    segments = _split_unescaped(description, ":")
    if _unescape(segments[0]) != "ssl":
        return description
    for i, segment in enumerate(segments[1:], 1):
        key_value = _split_unescaped(segment, "=", limit=1)
        if len(key_value) == 2 and _unescape(key_value[0]) in _SSL_PATH_KEYS:
            path = _unescape(key_value[1])
            if path and not os.path.isabs(path):
                segments[i] = f"{key_value[0]}={_escape(_absolute(cwd, path))}"
    return ":".join(segments)


def _rate(name: str, text: str) -> Rate:
    try:
        return Rate.parse(text)
    except ValueError as e:
        raise usage.UsageError(f"--{name}: {e}") from None


class Options(usage.Options):
    """Command-line options of ``twistd chatd``; ``self.config`` holds the result."""

    synopsis = "[options]"
    longdesc = "chatd: a real-time chat server (REST, WebSocket, browser page) on MongoDB."
    optParameters = [[name, None, None, help] for name, (_, _, help) in _PARAMETERS.items()]

    def __init__(self, environ: dict | None = None) -> None:
        super().__init__()
        self._environ = os.environ if environ is None else environ
        self["listen"] = []
        self.argv: list[str] = []
        self.cwd = os.getcwd()

    def parseOptions(self, options=None) -> None:
        # Kept as given: the workers of --workers are started with the same options, read the same way.
        self.argv = list(sys.argv[1:] if options is None else options)
        super().parseOptions(options)

    def opt_listen(self, description: str) -> None:
        """a Twisted endpoint string, e.g. tcp:8080 or ssl:8443:privateKey=k.pem:certKey=c.pem (repeatable; env CHATD_LISTEN, space-separated)"""
        self["listen"].append(description)

    def _value(self, name: str) -> str | None:
        variable, default, _ = _PARAMETERS[name]
        if self[name] is not None:
            return self[name]
        return self._environ.get(variable) or default

    def postOptions(self) -> None:
        cwd = self.cwd = os.getcwd()
        listen = self["listen"] or self._environ.get("CHATD_LISTEN", "").split() or ["tcp:8080"]
        listen = [absolute_listen(description, cwd) for description in listen]
        secret = self._value("jwt-secret")
        if secret is not None and len(secret.encode("utf-8")) < MIN_BYTES:
            raise usage.UsageError(f"--jwt-secret must be at least {MIN_BYTES} bytes")
        mongo = self._value("mongo")
        if mongo is not None and not mongo.startswith(("mongodb://", "mongodb+srv://")):
            raise usage.UsageError("--mongo must be a mongodb:// URI")
        redis = self._value("redis")
        if redis is not None:
            try:
                RedisAddress.parse(redis)
            except BadRedisUrl as e:  # its message never repeats the URL, which may hold a password
                raise usage.UsageError(str(e)) from None
        workers = _positive_int("workers", self._value("workers"), 1, MAX_WORKERS)
        unshareable = [d for d in listen if kind_of(d) not in SHAREABLE_KINDS]
        if workers > 1 and unshareable:
            raise usage.UsageError(f"--workers shares tcp:, tcp6: and ssl: listeners only, not {unshareable[0]!r}")
        log_format = self._value("log-format").strip()
        if log_format not in jsonlog.FORMATS:
            raise usage.UsageError(f"--log-format must be text or json, not {log_format!r}")
        if log_format == "json" and getattr(self, "parent", None) is not None:
            jsonlog.use_for_twistd(self.parent)  # twistd's options: read once this returns
        try:
            trusted_proxies = TrustedProxies.parse(self._value("trusted-proxies"))
        except ValueError as e:
            raise usage.UsageError(f"--trusted-proxies: {e}") from None
        static = _absolute(cwd, self._value("static"))
        if not os.path.isdir(static):
            raise usage.UsageError(f"--static: {static!r} is not a directory")
        self.config = Config(
            listen=listen,
            mongo=mongo,
            data_dir=_absolute(cwd, self._value("data-dir")),
            jwt_secret=secret.encode("utf-8") if secret is not None else None,
            token_ttl=_positive_int("token-ttl", self._value("token-ttl")),
            redis=redis,
            workers=workers,
            allowed_origins=[o.strip() for o in self._value("allowed-origins").split(",") if o.strip()],
            trusted_proxies=trusted_proxies,
            static=static,
            max_upload=_positive_int("max-upload", self._value("max-upload")),
            auth_rate=_rate("auth-rate", self._value("auth-rate")),
            socket_rate=_rate("socket-rate", self._value("socket-rate")),
            bcrypt_cost=_positive_int("bcrypt-cost", self._value("bcrypt-cost"), 4, 31),
            max_sockets_per_user=_positive_int("max-sockets-per-user", self._value("max-sockets-per-user")),
            max_sockets_per_address=_positive_int("max-sockets-per-address", self._value("max-sockets-per-address")),
            handshake_rate=_rate("handshake-rate", self._value("handshake-rate")),
            upload_quota=_positive_int("upload-quota", self._value("upload-quota")),
            max_rooms_per_user=_positive_int("max-rooms-per-user", self._value("max-rooms-per-user")),
            log_format=log_format,
            **switches(self._environ),
        )


def makeService(options: Options):
    """The chatd service for ``twistd``: :class:`chatd.service.ChatdService`, or with ``--workers`` above 1
    the parent of that many (:class:`chatd.workers.parent.WorkerParent`). A worker, started by such a
    parent (``CHATD_WORKER`` set), is a ChatdService on its parent's sockets whatever ``--workers`` says."""
    from twisted.internet import reactor

    from chatd.service import ChatdService
    from chatd.workers.role import WorkerRole

    worker = WorkerRole.from_environ(options._environ)
    if worker is not None:
        return ChatdService(options.config, reactor, worker=worker)
    if options.config.workers > 1:
        from chatd.workers.parent import WorkerParent

        return WorkerParent(options.config, reactor, options.argv, options.cwd, options._environ)
    return ChatdService(options.config, reactor)
