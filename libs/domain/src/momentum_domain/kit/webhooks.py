"""Webhook deliveries, each applied once: every provider (Stripe, HeyGen) may deliver an event
more than once, and a redelivery must change nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from momentum_domain.base import Base, CreatedAt, UUIDPrimaryKey


class ProcessedWebhookEvent(UUIDPrimaryKey, CreatedAt, Base):
    """Each provider event id is stored once: a redelivered event is recognised and ignored."""

    __tablename__ = "processed_webhook_events"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)

    provider: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(120))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)


async def record_once(
    session: AsyncSession,
    provider: str,
    event_id: str,
    *,
    event_type: str,
    payload: dict[str, Any],
) -> bool:
    """Store the event in the caller's transaction; False if it was stored before (a
    redelivery), which the caller then ignores."""
    first_time = await session.scalar(
        insert(ProcessedWebhookEvent)
        .values(
            provider=provider,
            event_id=event_id[:255],
            event_type=event_type[:120],
            payload=payload,
        )
        .on_conflict_do_nothing(index_elements=["provider", "event_id"])
        .returning(ProcessedWebhookEvent.id)
    )
    return first_time is not None
