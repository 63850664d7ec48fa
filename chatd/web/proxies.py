"""Who the client is behind a reverse proxy (``--trusted-proxies``): X-Forwarded-For, -Proto and -Host.

Behind nginx every connection comes from nginx, so per-address limits
(``--auth-rate``, ``--handshake-rate``, ``--max-sockets-per-address``) would
count every user together, and a TLS-terminating proxy makes the page's
``https://`` Origin look foreign to the same-origin check. When, and only when,
the TCP peer is in ``--trusted-proxies``, chatd believes what the proxy says:

- the client address is the rightmost ``X-Forwarded-For`` entry that is not a
  trusted proxy itself (entries further left are whatever the client sent, and
  prove nothing); all entries trusted: the leftmost; a malformed entry reached
  on the way, or no header: the peer;
- the scheme and host the browser used are ``X-Forwarded-Proto`` and
  ``X-Forwarded-Host`` (first value each; else the connection's own and ``Host``).

A peer that is not trusted has its headers ignored entirely: a client cannot
spoof its address. :meth:`TrustedProxies.client_host` is the one rule, for REST
(:func:`request_client_host`) and the WebSocket handshake (chatd.web.ws) alike.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_SCHEMES = {"https": True, "wss": True, "http": False, "ws": False}


def _address(text: str) -> Address | None:
    """An address from a forwarded entry: ``1.2.3.4``, ``1.2.3.4:567``, ``2001:db8::1``, ``[2001:db8::1]:567``."""
    text = text.strip()
    if text.startswith("["):
        inside, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not (rest[0] == ":" and rest[1:].isdigit())):
            return None
        text = inside
    elif text.count(":") == 1:
        text, _, port = text.partition(":")
        if not port.isdigit():
            return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _joined(values) -> str | None:
    """One header value from a string, or the values of its repeated lines (in order, comma-joined)."""
    if values is None or isinstance(values, str):
        return values
    values = [v.decode("latin-1") if isinstance(v, bytes) else v for v in values]
    return ",".join(values) if values else None


def _first(value: str | None) -> str:
    return value.split(",", 1)[0].strip() if value else ""


@dataclass(frozen=True)
class TrustedProxies:
    """The networks whose forwarding headers chatd believes; empty (the default) trusts nobody."""

    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, text: str) -> "TrustedProxies":
        """From ``--trusted-proxies``: comma-separated addresses and networks (``127.0.0.1, 10.0.0.0/8, ::1``)."""
        networks = []
        for item in (part.strip() for part in text.split(",")):
            if item:
                try:
                    networks.append(ipaddress.ip_network(item, strict=False))
                except ValueError:
                    raise ValueError(f"not an IP address or network: {item!r}") from None
        return cls(tuple(networks))

    def _trusted(self, address: Address) -> bool:
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # a tcp6: listener sees IPv4 peers as ::ffff:a.b.c.d
        return any(address in network for network in self.networks)

    def trusts(self, host: str | None) -> bool:
        """Whether the TCP peer ``host`` is a trusted proxy."""
        if not self.networks or not host:
            return False
        address = _address(host)
        return address is not None and self._trusted(address)

    def client_host(self, peer: str | None, forwarded_for) -> str | None:
        """The client's address: ``peer``, or from ``forwarded_for`` (a header value, or its lines) when
        ``peer`` is trusted; see the module docstring for the rule."""
        value = _joined(forwarded_for)
        if not value or not self.trusts(peer):
            return peer
        entries = value.split(",")
        leftmost = None
        for entry in reversed(entries):
            address = _address(entry)
            if address is None:
                return peer
            if not self._trusted(address):
                return str(address)
            leftmost = address
        return str(leftmost) if leftmost is not None else peer

    def origin_view(self, peer: str | None, host: str | None, secure: bool, forwarded_proto,
                    forwarded_host) -> tuple[str | None, bool]:
        """The (host, secure) the browser used, for the same-origin check: the proxy's word when trusted."""
        if not self.trusts(peer):
            return host, secure
        scheme = _first(_joined(forwarded_proto)).lower()
        if scheme in _SCHEMES:
            secure = _SCHEMES[scheme]
        return _first(_joined(forwarded_host)) or host, secure


NOBODY = TrustedProxies()


def _site_proxies(request) -> TrustedProxies:
    site = getattr(getattr(request, "channel", None), "site", None)
    return getattr(site, "trusted_proxies", NOBODY)


def request_client_host(request) -> str | None:
    """The client address of a REST request (its site's ``trusted_proxies`` decide); None for a Unix socket."""
    peer = getattr(request.getClientAddress(), "host", None)
    return _site_proxies(request).client_host(peer, request.requestHeaders.getRawHeaders(b"x-forwarded-for"))
