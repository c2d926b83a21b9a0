"""Stripe Checkout: one course, or the premium subscription.

Every call to Stripe carries an idempotency key made from our own ids and the state it acts on,
so a repeated request (a double click, a retry after a crash) replays the first answer instead of
doing the work twice, while a request made from a new state gets a new key:

- ``customer:{user_id}:{params digest}``: one customer per user.
- ``checkout:course:{user_id}:{course_id}:after:{previous session id or none}:{params digest}``:
  clicks while a Checkout Session is open return that session (looked up first, the key covers
  concurrent clicks); once it has expired, the previous session id changes the key, so a new one
  is made. The payment row's id is derived from the key, so concurrent clicks record one row.
- ``checkout:subscription:{user_id}:{price_id}:after:{newest session id or none}:{digest}``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.catalog.models import Course, CourseStatus
from momentum_domain.commerce.entitlements import has_active_subscription, may_open_course
from momentum_domain.commerce.models import Payment, PaymentKind, PaymentStatus
from momentum_domain.commerce.stripe_client import PaymentProviderError, StripeGateway
from momentum_domain.commerce.stripe_objects import params_digest
from momentum_domain.config import Settings
from momentum_domain.errors import Conflict, NotFound
from momentum_domain.kit.unit_of_work import commit
from momentum_domain.users.models import Role, User

if TYPE_CHECKING:
    from stripe.params import CustomerCreateParams
    from stripe.params.checkout import SessionCreateParams

# Namespace of the payment ids derived from idempotency keys (uuid5).
PAYMENT_ID_NAMESPACE = uuid.UUID("6f1d0c52-8d0e-4b8a-9a7e-3b2f5c1e9d40")

Interval = Literal["month", "year"]


@dataclass(frozen=True, slots=True)
class CheckoutStart:
    checkout_url: str
    session_id: str


async def _buyer(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None or user.erased_at is not None:
        raise NotFound("No such user.")
    return user


class CheckoutService:
    async def ensure_customer(
        self, session: AsyncSession, gateway: StripeGateway, user: User
    ) -> str:
        """The user's Stripe customer, created once. It is committed at once: Stripe holds the
        customer from now on, whatever happens to the rest of the request. Concurrent callers
        send the same idempotency key, get the same customer, and the first write wins."""
        if user.stripe_customer_id:
            return user.stripe_customer_id
        params: CustomerCreateParams = {
            "email": user.email,
            "name": user.name,
            "metadata": {"user_id": str(user.id)},
        }
        customer_id = await gateway.create_customer(
            params, idempotency_key=f"customer:{user.id}:{params_digest(params)}"
        )
        await session.execute(
            update(User)
            .where(User.id == user.id, User.stripe_customer_id.is_(None))
            .values(stripe_customer_id=customer_id)
            .execution_options(synchronize_session=False)
        )
        await commit(session)
        # A concurrent request may have stored its customer first (the same one, normally).
        await session.refresh(user)
        assert user.stripe_customer_id is not None
        return user.stripe_customer_id

    async def start_course(
        self,
        session: AsyncSession,
        gateway: StripeGateway,
        settings: Settings,
        *,
        user_id: uuid.UUID,
        course_id: uuid.UUID,
    ) -> CheckoutStart:
        """A Checkout Session for one paid, published course, recorded as a PENDING payment."""
        user = await _buyer(session, user_id)
        course = await session.get(Course, course_id)
        if course is None or course.status is not CourseStatus.PUBLISHED:
            raise NotFound("No such course.")
        if await may_open_course(session, user_id=user.id, course=course):
            raise Conflict("You can already open this course.", extra={"course_id": str(course.id)})
        if course.price_cents <= 0:
            raise Conflict(
                "This course is not sold on its own: it comes with the premium subscription.",
                extra={"course_id": str(course.id)},
            )
        latest = await session.scalar(
            select(Payment)
            .where(
                Payment.user_id == user.id,
                Payment.course_id == course.id,
                Payment.kind == PaymentKind.COURSE,
            )
            .order_by(Payment.created_at.desc(), Payment.id.desc())
            .limit(1)
        )
        if (
            latest is not None
            and latest.status in (PaymentStatus.PENDING, PaymentStatus.FAILED)
            and latest.stripe_checkout_session_id
        ):
            current = await gateway.retrieve_checkout_session(latest.stripe_checkout_session_id)
            if current.status == "open" and current.url:
                return CheckoutStart(current.url, current.id)
            if current.status == "complete":
                raise Conflict(
                    "This purchase is being completed; the course opens in a moment.",
                    extra={"session_id": current.id},
                )
            if latest.status is PaymentStatus.PENDING:  # expired: that attempt is over
                latest.status = PaymentStatus.FAILED
        customer_id = await self.ensure_customer(session, gateway, user)

        previous = (latest.stripe_checkout_session_id if latest else None) or "none"
        metadata = {
            "kind": PaymentKind.COURSE.value,
            "user_id": str(user.id),
            "course_id": str(course.id),
        }
        params: SessionCreateParams = {
            "mode": "payment",
            "customer": customer_id,
            "client_reference_id": str(user.id),
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": course.currency,
                        "unit_amount": course.price_cents,
                        "product_data": {
                            "name": course.title,
                            "metadata": {"course_id": str(course.id)},
                        },
                    },
                }
            ],
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
            "success_url": (
                f"{settings.frontend_url}/checkout/success?session_id={{CHECKOUT_SESSION_ID}}"
            ),
            "cancel_url": f"{settings.frontend_url}/courses/{course.slug}?checkout=cancelled",
        }
        key = f"checkout:course:{user.id}:{course.id}:after:{previous}:{params_digest(params)}"
        payment_id = uuid.uuid5(PAYMENT_ID_NAMESPACE, key)
        metadata["payment_id"] = str(payment_id)  # shared by the session and its payment intent
        created = await gateway.create_checkout_session(params, idempotency_key=key)
        await session.execute(
            insert(Payment)
            .values(
                id=payment_id,
                user_id=user.id,
                course_id=course.id,
                kind=PaymentKind.COURSE,
                status=PaymentStatus.PENDING,
                stripe_checkout_session_id=created.id,
                amount_cents=course.price_cents,
                currency=course.currency,
                refunded_amount_cents=0,
            )
            .on_conflict_do_nothing()
        )
        if not created.url:
            raise PaymentProviderError("Stripe returned a Checkout Session without a URL.")
        await commit(session)
        return CheckoutStart(created.url, created.id)

    async def start_subscription(
        self,
        session: AsyncSession,
        gateway: StripeGateway,
        settings: Settings,
        *,
        user_id: uuid.UUID,
        interval: Interval,
    ) -> CheckoutStart:
        """A Checkout Session for the premium subscription, monthly or yearly."""
        user = await _buyer(session, user_id)
        if user.role in (Role.PREMIUM, Role.ADMIN) or await has_active_subscription(
            session, user.id
        ):
            raise Conflict("You already have premium access.")
        price = (
            settings.stripe_price_premium_monthly
            if interval == "month"
            else settings.stripe_price_premium_yearly
        )
        customer_id = await self.ensure_customer(session, gateway, user)
        earlier = [
            checkout
            for checkout in await gateway.list_checkout_sessions(customer=customer_id)
            if checkout.mode == "subscription" and checkout.metadata.get("price_id") == price
        ]
        for checkout in earlier:
            if checkout.status == "open" and checkout.url:
                return CheckoutStart(checkout.url, checkout.id)
        previous = earlier[0].id if earlier else "none"
        params: SessionCreateParams = {
            "mode": "subscription",
            "customer": customer_id,
            "client_reference_id": str(user.id),
            "line_items": [{"price": price, "quantity": 1}],
            "metadata": {
                "kind": PaymentKind.SUBSCRIPTION.value,
                "user_id": str(user.id),
                "interval": interval,
                "price_id": price,
            },
            "subscription_data": {"metadata": {"user_id": str(user.id)}},
            "success_url": (
                f"{settings.frontend_url}/premium/success?session_id={{CHECKOUT_SESSION_ID}}"
            ),
            "cancel_url": f"{settings.frontend_url}/premium?checkout=cancelled",
        }
        key = f"checkout:subscription:{user.id}:{price}:after:{previous}:{params_digest(params)}"
        created = await gateway.create_checkout_session(params, idempotency_key=key)
        if not created.url:
            raise PaymentProviderError("Stripe returned a Checkout Session without a URL.")
        return CheckoutStart(created.url, created.id)


checkout = CheckoutService()

__all__ = ["CheckoutService", "CheckoutStart", "Interval", "checkout"]
