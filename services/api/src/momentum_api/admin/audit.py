from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, get
from litestar.params import FromQuery, QueryParameter

from momentum_api.deps import DbSession
from momentum_api.identity.guards import admin
from momentum_api.schemas import Offset
from momentum_domain.audit.service import audit
from momentum_domain.kit.pagination import PageRequest


class AuditLogOut(msgspec.Struct):
    id: uuid.UUID
    actor_id: uuid.UUID | None
    action: str
    resource_type: str
    resource_id: str | None
    ip: str | None
    user_agent: str | None
    details: dict[str, Any]
    created_at: datetime


class AuditLogPage(msgspec.Struct):
    items: list[AuditLogOut]
    total: int
    limit: int
    offset: int


class AuditLogController(Controller):
    path = "/admin/audit-logs"
    tags = ["Admin"]
    guards = [admin]
    security = [{"BearerToken": []}]

    @get("/", operation_id="listAuditLogs", summary="The audit trail, newest first")
    async def list_audit_logs(
        self,
        db_session: DbSession,
        action: FromQuery[str | None] = None,
        actor_id: FromQuery[uuid.UUID | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        offset: Offset = 0,
    ) -> AuditLogPage:
        found = await audit.search(
            db_session, action=action, actor_id=actor_id, page=PageRequest(limit, offset)
        )
        items = [
            AuditLogOut(
                id=row.id,
                actor_id=row.actor_id,
                action=row.action,
                resource_type=row.resource_type,
                resource_id=row.resource_id,
                ip=str(row.ip) if row.ip else None,
                user_agent=row.user_agent,
                details=row.details,
                created_at=row.created_at,
            )
            for row in found.items
        ]
        return AuditLogPage(items=items, total=found.total, limit=limit, offset=offset)
