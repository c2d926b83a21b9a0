from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, get
from litestar.params import FromQuery, QueryParameter
from sqlalchemy import func, select

from momentum_api.deps import DbSession
from momentum_api.identity.guards import admin
from momentum_api.schemas import Offset
from momentum_domain.audit.models import AuditLog


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
        query = select(AuditLog)
        if action:
            query = query.where(AuditLog.action == action)
        if actor_id:
            query = query.where(AuditLog.actor_id == actor_id)
        total = await db_session.scalar(select(func.count()).select_from(query.subquery()))
        rows = await db_session.scalars(
            query.order_by(AuditLog.created_at.desc()).limit(limit).offset(offset)
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
            for row in rows
        ]
        return AuditLogPage(items=items, total=total or 0, limit=limit, offset=offset)
