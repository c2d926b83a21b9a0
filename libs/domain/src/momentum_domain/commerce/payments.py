"""Payments as recorded: a learner's own, the administrators' search, and the row lock every
writer of a payment takes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.catalog.models import Course
from momentum_domain.commerce.models import Payment, PaymentStatus
from momentum_domain.kit.pagination import Paged, PageRequest, paginate, paginate_rows

# Newest first; the id keeps pages from overlapping.
NEWEST_FIRST = (Payment.created_at.desc(), Payment.id)


@dataclass(frozen=True, slots=True)
class PaymentFilter:
    status: PaymentStatus | None = None
    user_id: uuid.UUID | None = None
    course_id: uuid.UUID | None = None


async def lock_payment(session: AsyncSession, *conditions: Any) -> Payment | None:
    """The payment matching ``conditions``, locked and read afresh: refunds and Stripe's events
    change a payment one at a time."""
    return await session.scalar(
        select(Payment)
        .where(*conditions)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


class PaymentService:
    async def mine(
        self, session: AsyncSession, user_id: uuid.UUID, page: PageRequest
    ) -> Paged[tuple[Payment, str | None]]:
        """Payments that happened or were attempted, with their course's title; checkouts still
        open are not listed."""
        stmt: Select[*tuple[Any, ...]] = (
            select(Payment, Course.title)
            .outerjoin(Course, Course.id == Payment.course_id)
            .where(Payment.user_id == user_id, Payment.status != PaymentStatus.PENDING)
        )
        rows = await paginate_rows(session, stmt, page, NEWEST_FIRST)
        return Paged([(payment, title) for payment, title in rows.items], rows.total)

    async def search(
        self, session: AsyncSession, found_by: PaymentFilter, page: PageRequest
    ) -> Paged[Payment]:
        conditions = []
        if found_by.status is not None:
            conditions.append(Payment.status == found_by.status)
        if found_by.user_id is not None:
            conditions.append(Payment.user_id == found_by.user_id)
        if found_by.course_id is not None:
            conditions.append(Payment.course_id == found_by.course_id)
        return await paginate(session, select(Payment).where(*conditions), page, NEWEST_FIRST)


payments = PaymentService()

__all__ = ["PaymentFilter", "PaymentService", "lock_payment", "payments"]
