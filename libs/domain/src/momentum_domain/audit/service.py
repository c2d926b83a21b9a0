"""The audit trail: who did what to which resource, from where. Each entry is a row, and once
its transaction commits also a line in the audit sink outside the database (audit.sink)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.audit.models import AuditLog
from momentum_domain.audit.sink import AuditLine, audit_line, export_after_commit
from momentum_domain.kit.pagination import Paged, PageRequest, paginate


@dataclass(frozen=True, slots=True)
class RequestOrigin:
    ip: str | None
    user_agent: str | None


class AuditService:
    async def record(
        self,
        session: AsyncSession,
        *,
        actor_id: uuid.UUID | None,
        action: str,
        resource_type: str,
        resource_id: str | uuid.UUID | None,
        origin: RequestOrigin | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditLog:
        entry = AuditLog(
            actor_id=actor_id,
            action=action,
            resource_type=resource_type,
            resource_id=str(resource_id) if resource_id is not None else None,
            ip=origin.ip if origin else None,
            user_agent=origin.user_agent if origin else None,
            details=details or {},
        )
        session.add(entry)
        await session.flush()  # created_at comes back with the insert (eager defaults)
        export_after_commit(
            session,
            AuditLine(
                timestamp_ms=int(entry.created_at.timestamp() * 1000),
                line=audit_line(
                    {
                        "id": entry.id,
                        "at": entry.created_at.isoformat(),
                        "actor_id": entry.actor_id,
                        "action": entry.action,
                        "resource_type": entry.resource_type,
                        "resource_id": entry.resource_id,
                        "ip": entry.ip,
                        "user_agent": entry.user_agent,
                        "details": entry.details,
                    }
                ),
            ),
        )
        return entry

    async def search(
        self,
        session: AsyncSession,
        *,
        action: str | None,
        actor_id: uuid.UUID | None,
        page: PageRequest,
    ) -> Paged[AuditLog]:
        """The trail, newest first."""
        stmt = select(AuditLog)
        if action:
            stmt = stmt.where(AuditLog.action == action)
        if actor_id:
            stmt = stmt.where(AuditLog.actor_id == actor_id)
        return await paginate(session, stmt, page, [AuditLog.created_at.desc(), AuditLog.id])


audit = AuditService()
