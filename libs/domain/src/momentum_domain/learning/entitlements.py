"""Who may open which course. One function, so every door (enrollment, lessons) asks the same
question: a free course, a purchase of this course, premium membership (an active or trialing
subscription, or the PREMIUM role), or an administrator."""

from __future__ import annotations

import uuid

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.catalog.models import Course
from momentum_domain.commerce.models import Payment, PaymentKind, PaymentStatus, Subscription
from momentum_domain.users.models import Role

# Stripe subscription statuses that grant premium access.
ACTIVE_SUBSCRIPTION_STATUSES = ("active", "trialing")
# A purchase keeps opening its course until it is fully refunded.
ENTITLING_PAYMENT_STATUSES = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED)


async def has_active_subscription(session: AsyncSession, user_id: uuid.UUID) -> bool:
    return bool(
        await session.scalar(
            select(
                exists().where(
                    Subscription.user_id == user_id,
                    Subscription.status.in_(ACTIVE_SUBSCRIPTION_STATUSES),
                )
            )
        )
    )


async def has_purchased(session: AsyncSession, user_id: uuid.UUID, course_id: uuid.UUID) -> bool:
    return bool(
        await session.scalar(
            select(
                exists().where(
                    Payment.user_id == user_id,
                    Payment.course_id == course_id,
                    Payment.kind == PaymentKind.COURSE,
                    Payment.status.in_(ENTITLING_PAYMENT_STATUSES),
                )
            )
        )
    )


async def may_open_course(
    session: AsyncSession, *, user_id: uuid.UUID, role: Role, course: Course
) -> bool:
    if role is Role.ADMIN:
        return True
    if not course.is_premium and course.price_cents == 0:
        return True
    if role is Role.PREMIUM or await has_active_subscription(session, user_id):
        return True
    return await has_purchased(session, user_id, course.id)
