from __future__ import annotations

from typing import Any

from litestar import Request

from momentum_domain.audit.service import RequestOrigin
from momentum_domain.config import Settings


def client_ip(request: Request[Any, Any, Any], settings: Settings) -> str | None:
    if settings.api_trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[-1].strip()
    return request.client.host if request.client else None


def request_origin(request: Request[Any, Any, Any], settings: Settings) -> RequestOrigin:
    return RequestOrigin(
        ip=client_ip(request, settings), user_agent=request.headers.get("user-agent")
    )
