"""Who is calling: the client's address (behind trusted proxies too) and user agent."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from typing import Any

from litestar import Request
from litestar.types import Scope

from momentum_domain.audit.service import RequestOrigin
from momentum_domain.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(scope: Scope, trusted_proxies: Sequence[IPNetwork]) -> str | None:
    """The caller's IP address, or None when the socket peer is not one (a test client, a Unix
    socket). It is stored in INET columns and keys the rate limits.

    Only a peer inside ``trusted_proxies`` (the load balancer) is believed about
    X-Forwarded-For. Each proxy appends the address it received the request from, so the header
    is read from the right, skipping trusted proxies: the first other hop is the client (the
    left-most hop if all are trusted). Hops to its left were sent by the client and prove
    nothing. A malformed hop ends the walk at the trusted proxy that reported it."""
    client = scope.get("client")
    address = _parse(client[0]) if client else None
    if address is None:
        return None
    if _is_trusted(address, trusted_proxies):
        for hop in _forwarded_hops(scope):
            parsed = _parse(hop)
            if parsed is None:
                break
            address = parsed
            if not _is_trusted(address, trusted_proxies):
                break
    return str(address)


def came_over_tls(scope: Scope, trusted_proxies: Sequence[IPNetwork]) -> bool:
    """Whether the client's connection was TLS: this server's own, or the trusted proxy's in
    front of it (its X-Forwarded-Proto; the right-most value is the one it wrote)."""
    if scope.get("scheme") in ("https", "wss"):
        return True
    client = scope.get("client")
    peer = _parse(client[0]) if client else None
    if peer is None or not _is_trusted(peer, trusted_proxies):
        return False
    values = [value for name, value in scope["headers"] if name.lower() == b"x-forwarded-proto"]
    return len(values) == 1 and values[0].rsplit(b",", 1)[-1].strip().lower() == b"https"


def request_origin(request: Request[Any, Any, Any], settings: Settings) -> RequestOrigin:
    return RequestOrigin(
        ip=client_address(request.scope, settings.api_trusted_proxies),
        user_agent=request.headers.get("user-agent"),
    )


def _forwarded_hops(scope: Scope) -> Iterator[str]:
    """X-Forwarded-For's hops, right-most first. Several header lines yield nothing: which one
    the proxy appended to is not defined, so the client could have written the one read last."""
    values = [value for name, value in scope["headers"] if name.lower() == b"x-forwarded-for"]
    if len(values) == 1:
        yield from reversed(values[0].decode("latin-1").split(","))


def _parse(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:  # fe80::1%eth0 fits no INET column
            return None
        # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
        return address.ipv4_mapped or address
    return address


def _is_trusted(address: IPAddress, trusted_proxies: Sequence[IPNetwork]) -> bool:
    return any(address in network for network in trusted_proxies)
