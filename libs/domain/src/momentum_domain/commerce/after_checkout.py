"""After checkout: what came of a buyer's Checkout Session, read from our database (Stripe's
webhook keeps it current, so a success page may poll without anyone calling Stripe), and what
can be bought and for how much."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import column, exists, func, select, table
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from momentum_domain.catalog.models import Course, CourseStatus
from momentum_domain.commerce.entitlements import may_open
from momentum_domain.commerce.models import Payment, PaymentKind, PaymentStatus
from momentum_domain.config import Settings
from momentum_domain.errors import NotFound

# Learning's enrollments, named here rather than imported: learning builds on commerce (its
# entitlement rule), so commerce reads the two columns it needs without importing learning.
_enrollments = table("enrollments", column("user_id"), column("course_id"))


@dataclass(frozen=True, slots=True)
class PurchasedCourse:
    id: uuid.UUID
    slug: str
    title: str


@dataclass(frozen=True, slots=True)
class CheckoutOutcome:
    session_id: str
    # PENDING until Stripe's event arrives; FAILED when the payment failed or the session
    # expired unpaid; SUCCEEDED, PARTIALLY_REFUNDED or REFUNDED once paid.
    status: PaymentStatus
    amount_cents: int
    currency: str
    # None when the course has been deleted since.
    course: PurchasedCourse | None
    # The buyer is enrolled in the course (a purchase enrolls in the transaction that records
    # it), and may open it (by this purchase or otherwise; a full refund ends what it gave).
    enrolled: bool
    can_open: bool


@dataclass(frozen=True, slots=True)
class PremiumPlan:
    interval: str
    amount_cents: int
    currency: str


@dataclass(frozen=True, slots=True)
class CoursePrices:
    """The published courses sold on their own in one currency."""

    currency: str
    count: int
    min_cents: int
    max_cents: int


@dataclass(frozen=True, slots=True)
class Plans:
    premium: list[PremiumPlan]
    courses: list[CoursePrices]


class AfterCheckoutService:
    async def outcome(
        self, session: AsyncSession, *, user_id: uuid.UUID, session_id: str
    ) -> CheckoutOutcome:
        """The buyer's course checkout; another user's, or one we never made, is not found."""
        # An alias: the entitlement rule's own subquery over payments must not correlate to it.
        bought = aliased(Payment)
        enrolled = exists().where(
            _enrollments.c.user_id == user_id, _enrollments.c.course_id == Course.id
        )
        row = (
            await session.execute(
                select(
                    bought,
                    Course.id,
                    Course.slug,
                    Course.title,
                    enrolled.label("enrolled"),
                    may_open(user_id).label("can_open"),
                )
                .outerjoin(Course, Course.id == bought.course_id)
                .where(
                    bought.stripe_checkout_session_id == session_id,
                    bought.user_id == user_id,
                    bought.kind == PaymentKind.COURSE,
                )
            )
        ).one_or_none()
        if row is None:
            raise NotFound("No such checkout session.")
        payment: Payment = row[0]
        course = PurchasedCourse(row.id, row.slug, row.title) if row.id is not None else None
        return CheckoutOutcome(
            session_id=session_id,
            status=payment.status,
            amount_cents=payment.amount_cents,
            currency=payment.currency,
            course=course,
            enrolled=bool(row.enrolled),
            can_open=bool(row.can_open),
        )

    async def plans(self, session: AsyncSession, settings: Settings) -> Plans:
        """The premium subscription at the configured prices, and the range of prices of the
        published courses sold on their own (a course without a price is free, or comes only
        with the subscription)."""
        premium = [
            PremiumPlan("month", settings.premium_monthly_cents, settings.premium_currency),
            PremiumPlan("year", settings.premium_yearly_cents, settings.premium_currency),
        ]
        rows = await session.execute(
            select(
                Course.currency,
                func.count(),
                func.min(Course.price_cents),
                func.max(Course.price_cents),
            )
            .where(
                Course.status == CourseStatus.PUBLISHED,
                Course.price_cents > 0,
            )
            .group_by(Course.currency)
            .order_by(Course.currency)
        )
        return Plans(premium, [CoursePrices(*row) for row in rows])


after_checkout = AfterCheckoutService()

__all__ = [
    "AfterCheckoutService",
    "CheckoutOutcome",
    "CoursePrices",
    "Plans",
    "PremiumPlan",
    "PurchasedCourse",
    "after_checkout",
]
