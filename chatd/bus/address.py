"""Where the bus is: a ``--redis`` URL parsed into parts, an endpoint to reach it, and a form safe to log.

Accepted (SPEC.md, ``--redis``): ``redis://[[user]:password@]host[:port][/db]``,
``rediss://`` for TLS (the server's certificate is checked against the
platform's trust roots, or against ``?ssl_ca_certs=/path/ca.pem``), and
``unix://[[user]:password@]/path/to/socket?db=N``. A URL may hold a password:
only :attr:`RedisAddress.safe` (password masked) ever goes into a log or an
error message.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from twisted.internet import endpoints, ssl

DEFAULT_PORT = 6379
CONNECT_TIMEOUT = 3.0  # seconds: a partitioned host is given up on quickly, then retried


class BadRedisUrl(ValueError):
    """The URL cannot name a Redis; the message never repeats the URL (it may hold a password)."""


@dataclass(frozen=True)
class RedisAddress:
    scheme: str  # redis, rediss or unix
    host: str = ""
    port: int = DEFAULT_PORT
    path: str = ""  # the socket's path, for unix://
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None  # rediss:// only: trust this CA instead of the platform's

    @property
    def tls(self) -> bool:
        return self.scheme == "rediss"

    @property
    def safe(self) -> str:
        """The URL with its password masked: the only form that may be logged."""
        user = self.username or ""
        auth = f"{user}:***@" if self.password is not None else (f"{user}@" if user else "")
        if self.scheme == "unix":
            return f"unix://{auth}{self.path}?db={self.db}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{auth}{host}:{self.port}/{self.db}"

    @classmethod
    def parse(cls, url: str) -> "RedisAddress":
        """Parse ``url`` or raise :class:`BadRedisUrl`."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise BadRedisUrl("--redis is not a valid URL (is the port a number, 1-65535?)") from None
        scheme = parts.scheme.lower()
        if scheme not in ("redis", "rediss", "unix"):
            raise BadRedisUrl("--redis must be a redis://, rediss:// or unix:// URL")
        query = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = set(query) - ({"db", "ssl_ca_certs"} if scheme == "rediss" else {"db"})
        if unknown:
            raise BadRedisUrl(f"--redis: unknown parameter(s) {', '.join(sorted(unknown))}")
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if scheme == "unix":
            path = unquote(parts.path)
            if not path.startswith("/") or parts.hostname:
                raise BadRedisUrl("--redis: a unix:// URL names an absolute socket path: unix:///path/to/redis.sock")
            return cls(scheme, path=path, db=_db(query.get("db", "0")), username=username, password=password)
        if not parts.hostname:
            raise BadRedisUrl("--redis: the URL names no host")
        db_text = parts.path.lstrip("/") or query.get("db", "0")
        return cls(scheme, host=parts.hostname, port=port or DEFAULT_PORT, db=_db(db_text), username=username,
                   password=password, ca_file=query.get("ssl_ca_certs") or None)

    def endpoint(self, reactor):
        """A client endpoint for this address (reads ``ssl_ca_certs``: call it at start, not in makeService)."""
        if self.scheme == "unix":
            return endpoints.UNIXClientEndpoint(reactor, self.path, timeout=CONNECT_TIMEOUT)
        try:
            literal = ipaddress.ip_address(self.host)
        except ValueError:
            literal = None
        if literal is None:
            plain = endpoints.HostnameEndpoint(reactor, self.host, self.port, timeout=CONNECT_TIMEOUT)
        elif literal.version == 4:
            plain = endpoints.TCP4ClientEndpoint(reactor, self.host, self.port, timeout=CONNECT_TIMEOUT)
        else:
            plain = endpoints.TCP6ClientEndpoint(reactor, self.host, self.port, timeout=CONNECT_TIMEOUT)
        if not self.tls:
            return plain
        trust = None
        if self.ca_file is not None:
            with open(self.ca_file, "rb") as pem:
                trust = ssl.Certificate.loadPEM(pem.read())
        return endpoints.wrapClientTLS(ssl.optionsForClientTLS(self.host, trustRoot=trust), plain)


def _db(text: str) -> int:
    if not text.isdigit() or int(text) > 1_000_000:
        raise BadRedisUrl("--redis: the database must be a number (redis://host:port/0)")
    return int(text)
