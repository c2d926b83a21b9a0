"""Who may open which course. One rule, so every door (enrollment, lessons, progress) asks the
same question: a free course, a purchase of this course, premium membership (an active or
trialing subscription, or the PREMIUM role), or an administrator.

The rule is a pure function of facts; the facts are SQL expressions, so a hot path can fetch
them inside the one statement that also reads its lesson or locks its enrollment."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.catalog.models import Course
from momentum_domain.commerce.models import Payment, PaymentKind, PaymentStatus, Subscription
from momentum_domain.users.models import Role

# Stripe subscription statuses that grant premium access.
ACTIVE_SUBSCRIPTION_STATUSES = ("active", "trialing")
# A purchase keeps opening its course until it is fully refunded.
ENTITLING_PAYMENT_STATUSES = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED)


def subscribed(user_id: Any) -> ColumnElement[bool]:
    """True when the user has a subscription that grants premium access."""
    return exists().where(
        Subscription.user_id == user_id,
        # Equalities rather than IN: an IN list is re-expanded on every execution.
        or_(*(Subscription.status == status for status in ACTIVE_SUBSCRIPTION_STATUSES)),
    )


def purchased(user_id: Any, course_id: Any) -> ColumnElement[bool]:
    """True when the user bought this course and it has not been fully refunded."""
    return exists().where(
        Payment.user_id == user_id,
        Payment.course_id == course_id,
        Payment.kind == PaymentKind.COURSE,
        or_(*(Payment.status == status for status in ENTITLING_PAYMENT_STATUSES)),
    )


def may_open(
    role: Role,
    *,
    is_premium: bool,
    price_cents: int,
    has_subscription: bool,
    has_purchase: bool,
) -> bool:
    if role is Role.ADMIN or (not is_premium and price_cents == 0):
        return True
    return role is Role.PREMIUM or has_subscription or has_purchase


async def has_active_subscription(session: AsyncSession, user_id: uuid.UUID) -> bool:
    return bool(await session.scalar(select(subscribed(user_id))))


async def may_open_course(
    session: AsyncSession, *, user_id: uuid.UUID, role: Role, course: Course
) -> bool:
    def rule(has_subscription: bool, has_purchase: bool) -> bool:
        return may_open(role, is_premium=course.is_premium, price_cents=course.price_cents,
                        has_subscription=has_subscription, has_purchase=has_purchase)  # fmt: skip

    if rule(False, False):  # no need to ask the database
        return True
    facts = select(subscribed(user_id), purchased(user_id, course.id))
    return rule(*(await session.execute(facts)).one())
