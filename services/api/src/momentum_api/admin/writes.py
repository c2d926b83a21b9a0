"""How every admin write ends: audited in its own transaction, committed, then the public
caches invalidated (only after the commit, so no reader can re-cache the old state)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request
from momentum_domain.audit.service import audit
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_api.cache import ResponseCache
from momentum_api.identity.principal import Principal
from momentum_api.origin import request_origin


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
    await audit.record(
        session,
        actor_id=request.user.id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        origin=request_origin(request, request.app.state.settings),
        details=details,
    )
    await session.commit()
    await cache.invalidate()
