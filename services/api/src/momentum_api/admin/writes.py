"""How admin writes end: audited in the same transaction as the change; catalog writes then
commit and invalidate the public caches (after the commit, so no reader re-caches old state)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_api.cache import ResponseCache
from momentum_api.identity.principal import Principal
from momentum_api.origin import request_origin
from momentum_domain.audit.service import audit


async def record_admin_action(
    request: Request[Principal, Any, Any],
    session: AsyncSession,
    *,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID | str | None,
    details: dict[str, Any] | None = None,
) -> None:
    """Audit an admin action in the request's transaction."""
    await audit.record(
        session,
        actor_id=request.user.id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        origin=request_origin(request, request.app.state.settings),
        details=details,
    )


async def commit_admin_write(
    request: Request[Principal, Any, Any],
    session: AsyncSession,
    cache: ResponseCache,
    *,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID | str | None,
    details: dict[str, Any] | None = None,
) -> None:
    await record_admin_action(
        request,
        session,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        details=details,
    )
    await session.commit()
    await cache.invalidate()
