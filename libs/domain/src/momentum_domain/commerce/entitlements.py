"""Who may open which course, from what commerce records (purchases and subscriptions). One
rule, so every door (learning's enrollment, lessons and progress; checkout) asks the same
question: a free course, a purchase of this course, premium membership (an active or trialing
subscription, or the PREMIUM role), or an administrator.

The rule is one SQL expression: a hot path evaluates it inside the one statement that reads
its lesson or writes its progress, and everything else asks may_open_course."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.catalog.models import Course
from momentum_domain.commerce.models import Payment, PaymentKind, PaymentStatus, Subscription
from momentum_domain.users.models import Role, User

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


def may_open(user_id: Any, course: Any = Course) -> ColumnElement[bool]:
    """The rule, as SQL over ``course`` (the courses table, or an alias of it), so a hot path
    can decide inside the one statement that reads or writes its rows. The role is read from
    the user's row, not from a cached principal: a role that Stripe's webhook just changed
    applies at once."""
    role = select(User.role).where(User.id == user_id).scalar_subquery()
    return or_(
        role == Role.ADMIN.value,
        and_(course.is_premium.is_(False), course.price_cents == 0),
        role == Role.PREMIUM.value,
        subscribed(user_id),
        purchased(user_id, course.id),
    )


async def is_premium_member(session: AsyncSession, user_id: uuid.UUID) -> bool:
    """A premium role or an active subscription: what premium perks (the schedule's) ask."""
    role = select(User.role).where(User.id == user_id).scalar_subquery()
    return bool(await session.scalar(select(or_(role == Role.PREMIUM.value, subscribed(user_id)))))


async def has_active_subscription(session: AsyncSession, user_id: uuid.UUID) -> bool:
    return bool(await session.scalar(select(subscribed(user_id))))


async def may_open_course(session: AsyncSession, *, user_id: uuid.UUID, course: Course) -> bool:
    return bool(await session.scalar(select(may_open(user_id)).where(Course.id == course.id)))
