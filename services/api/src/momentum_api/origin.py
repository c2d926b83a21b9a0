from __future__ import annotations

import ipaddress
from typing import Any

from litestar import Request

from momentum_domain.audit.service import RequestOrigin
from momentum_domain.config import Settings


def client_ip(request: Request[Any, Any, Any], settings: Settings) -> str | None:
    """The caller's IP address, or None when it is not a valid address (test clients, a
    malformed forwarded header): it is stored in INET columns and used as a rate-limit key."""
    candidate = request.client.host if request.client else None
    if settings.api_trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            candidate = forwarded.split(",")[-1].strip()
    try:
        return str(ipaddress.ip_address(candidate)) if candidate else None
    except ValueError:
        return None


def request_origin(request: Request[Any, Any, Any], settings: Settings) -> RequestOrigin:
    return RequestOrigin(
        ip=client_ip(request, settings), user_agent=request.headers.get("user-agent")
    )
