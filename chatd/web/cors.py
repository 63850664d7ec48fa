"""CORS and Origin checks against ``--allowed-origins`` (SPEC.md, Details: Origin)."""

from __future__ import annotations

from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _host_port(netloc_or_url: str, scheme: str | None = None) -> tuple[str, int | None] | None:
    try:
        parts = urlsplit(netloc_or_url if scheme is None else f"{scheme}://{netloc_or_url}")
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname.lower(), port


class OriginPolicy:
    """Which browser origins may call the API and open sockets.

    With no configured origins, only same-origin requests pass: the
    ``Origin``'s host and port must equal the ``Host`` header's. A request
    without ``Origin`` (curl, scripts, other services) always passes.
    """

    def __init__(self, allowed: list[str] | None = None) -> None:
        self._allowed = {origin.rstrip("/").lower() for origin in allowed or []}

    def allows(self, origin: str | None, host: str | None, secure: bool) -> bool:
        if origin is None:
            return True
        if origin.rstrip("/").lower() in self._allowed or "*" in self._allowed:
            return True
        mine = _host_port(host or "", "https" if secure else "http")
        theirs = _host_port(origin)
        return mine is not None and mine == theirs

    def cross_origin_allowed(self, origin: str | None) -> bool:
        """True when ``origin`` is explicitly configured (so CORS headers are due)."""
        return origin is not None and (origin.rstrip("/").lower() in self._allowed or "*" in self._allowed)


def apply_cors(request, policy: OriginPolicy) -> bool:
    """Add CORS headers for a configured origin; answer preflights. True if it was a preflight."""
    origin = request.getHeader("origin")
    if policy.cross_origin_allowed(origin):
        request.setHeader(b"Access-Control-Allow-Origin", origin.encode("utf-8"))
        request.setHeader(b"Access-Control-Expose-Headers", b"Retry-After")
    request.setHeader(b"Vary", b"Origin")
    if request.method == b"OPTIONS" and request.getHeader("access-control-request-method"):
        if policy.cross_origin_allowed(origin):
            request.setHeader(b"Access-Control-Allow-Methods", b"GET, POST, PUT, PATCH, DELETE")
            request.setHeader(b"Access-Control-Allow-Headers", b"Authorization, Content-Type")
            request.setHeader(b"Access-Control-Max-Age", b"600")
        return True
    return False
