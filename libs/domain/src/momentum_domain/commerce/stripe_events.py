"""Stripe's webhook events, applied once each: the table of the events we act on, and what
each does to our payments, subscriptions and users.

Each event is stored (``processed_webhook_events``) in the transaction that applies it, so a
redelivery changes nothing. Subscription state comes from the object an event carries
(``commerce.subscriptions``), so the order events arrive in does not matter."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.catalog.models import Course
from momentum_domain.commerce.events import CoursePurchased
from momentum_domain.commerce.models import (
    Payment,
    PaymentKind,
    PaymentStatus,
    Subscription,
)
from momentum_domain.commerce.payments import lock_payment
from momentum_domain.commerce.refunds import PAID_STATUSES, apply_refunded_total
from momentum_domain.commerce.stripe_objects import (
    as_datetime,
    as_uuid,
    dig,
    list_data,
    metadata_of,
    stripe_id,
)
from momentum_domain.commerce.subscriptions import subscriptions
from momentum_domain.errors import BadRequest
from momentum_domain.kit.unit_of_work import commit, dispatch
from momentum_domain.kit.webhooks import record_once
from momentum_domain.users.models import User

logger = logging.getLogger(__name__)

WEBHOOK_PROVIDER = "stripe"

EventHandler = Callable[[AsyncSession, dict[str, Any], datetime], Awaitable[None]]


class StripeEventService:
    def __init__(self) -> None:
        self._handlers: dict[str, EventHandler] = {
            "checkout.session.completed": self._checkout_completed,
            "checkout.session.async_payment_succeeded": self._checkout_completed,
            "checkout.session.async_payment_failed": self._checkout_abandoned,
            "checkout.session.expired": self._checkout_abandoned,
            "payment_intent.payment_failed": self._payment_intent_failed,
            "charge.refunded": self._charge_refunded,
            "customer.subscription.created": self._subscription_changed,
            "customer.subscription.updated": self._subscription_changed,
            "customer.subscription.deleted": self._subscription_changed,
            "invoice.paid": self._invoice_paid,
            "invoice.payment_failed": self._invoice_payment_failed,
        }

    async def handle(self, session: AsyncSession, event: Mapping[str, Any]) -> bool:
        """Apply a verified Stripe event once, in the transaction that records its id, and
        commit. False for an event already processed, which changes nothing. Unknown types are
        stored and otherwise ignored."""
        event_id, event_type = event.get("id"), event.get("type")
        obj = dig(event, "data", "object")
        created = as_datetime(event.get("created"))
        if not isinstance(event_id, str) or not isinstance(event_type, str) or not event_id:
            raise BadRequest("The body is not a Stripe event: it lacks an id or a type.")
        if not isinstance(obj, dict) or created is None:
            raise BadRequest("The body is not a Stripe event: it lacks data.object or created.")
        first_time = await record_once(
            session, WEBHOOK_PROVIDER, event_id, event_type=event_type, payload=dict(event)
        )
        if not first_time:
            return False
        handler = self._handlers.get(event_type)
        if handler is not None:
            await handler(session, obj, created)
        await commit(session)
        return True

    async def _checkout_payment(
        self, session: AsyncSession, checkout: dict[str, Any]
    ) -> Payment | None:
        """The course payment a Checkout Session belongs to. When the checkout request failed
        after Stripe made the session, the row is recreated from the session's metadata."""
        payment = await lock_payment(session, Payment.stripe_checkout_session_id == checkout["id"])
        if payment is not None:
            return payment
        metadata = metadata_of(checkout)
        payment_id = as_uuid(metadata.get("payment_id"))
        if metadata.get("kind") != PaymentKind.COURSE.value or payment_id is None:
            return None
        user_id = as_uuid(metadata.get("user_id"))
        course_id = as_uuid(metadata.get("course_id"))
        if user_id is not None and await session.get(User, user_id) is None:
            user_id = None
        if course_id is not None and await session.get(Course, course_id) is None:
            course_id = None
        amount = checkout.get("amount_total")
        await session.execute(
            insert(Payment)
            .values(
                id=payment_id,
                user_id=user_id,
                course_id=course_id,
                kind=PaymentKind.COURSE,
                status=PaymentStatus.PENDING,
                stripe_checkout_session_id=checkout["id"],
                amount_cents=amount if isinstance(amount, int) and amount >= 0 else 0,
                currency=str(checkout.get("currency") or "usd")[:3],
                refunded_amount_cents=0,
            )
            .on_conflict_do_nothing()
        )
        return await lock_payment(session, Payment.id == payment_id)

    async def _checkout_completed(
        self, session: AsyncSession, checkout: dict[str, Any], created: datetime
    ) -> None:
        if checkout.get("mode") == "subscription":
            await self._link_subscription_checkout(session, checkout)
            return
        if checkout.get("mode") != "payment":
            return
        payment = await self._checkout_payment(session, checkout)
        if payment is None:
            logger.warning("checkout session %s matches no payment", checkout.get("id"))
            return
        intent = stripe_id(checkout.get("payment_intent"))
        if intent and payment.stripe_payment_intent_id is None:
            payment.stripe_payment_intent_id = intent
        paid = checkout.get("payment_status") in ("paid", "no_payment_required")
        if paid and payment.status in (PaymentStatus.PENDING, PaymentStatus.FAILED):
            amount = checkout.get("amount_total")
            if isinstance(amount, int) and amount >= payment.refunded_amount_cents:
                payment.amount_cents = amount
            await self._succeeded(session, payment)
        await session.flush()

    @staticmethod
    async def _succeeded(session: AsyncSession, payment: Payment) -> None:
        """The payment is paid for the first time: a course purchase enrolls its buyer, in this
        transaction (a redelivery or a later event finds it SUCCEEDED already)."""
        payment.status = PaymentStatus.SUCCEEDED
        if payment.course_id is not None and payment.user_id is not None:
            await dispatch(session, CoursePurchased(payment.user_id, payment.course_id))

    async def _checkout_abandoned(
        self, session: AsyncSession, checkout: dict[str, Any], created: datetime
    ) -> None:
        """An expired session, or an asynchronous payment method that failed."""
        payment = await lock_payment(
            session, Payment.stripe_checkout_session_id == checkout.get("id")
        )
        if payment is not None and payment.status is PaymentStatus.PENDING:
            payment.status = PaymentStatus.FAILED
            await session.flush()

    async def _link_subscription_checkout(
        self, session: AsyncSession, checkout: dict[str, Any]
    ) -> None:
        """Tie the customer and the subscription of a completed subscription checkout to the
        user who started it. The subscription's state comes from its own events."""
        user_id = as_uuid(
            metadata_of(checkout).get("user_id") or checkout.get("client_reference_id")
        )
        # The user row first, as everywhere a subscription and a role change together.
        user = (
            await session.scalar(
                select(User)
                .where(User.id == user_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
            if user_id
            else None
        )
        if user is None:
            return
        customer = stripe_id(checkout.get("customer"))
        if customer and user.stripe_customer_id is None:
            owner = await session.scalar(select(User.id).where(User.stripe_customer_id == customer))
            if owner is None:
                await session.execute(
                    update(User)
                    .where(User.id == user.id, User.stripe_customer_id.is_(None))
                    .values(stripe_customer_id=customer)
                )
        subscription_id = stripe_id(checkout.get("subscription"))
        if subscription_id:
            linked = await session.scalar(
                update(Subscription)
                .where(
                    Subscription.stripe_subscription_id == subscription_id,
                    Subscription.user_id.is_(None),
                )
                .values(user_id=user.id)
                .returning(Subscription.id)
            )
            if linked is not None:
                await subscriptions.sync_role(session, user.id)

    async def _payment_intent_failed(
        self, session: AsyncSession, intent: dict[str, Any], created: datetime
    ) -> None:
        payment = await lock_payment(session, Payment.stripe_payment_intent_id == intent["id"])
        if payment is None and (payment_id := as_uuid(metadata_of(intent).get("payment_id"))):
            payment = await lock_payment(session, Payment.id == payment_id)
        if payment is None:
            return
        if payment.stripe_payment_intent_id is None:
            payment.stripe_payment_intent_id = str(intent["id"])
        # A later successful attempt on the same checkout still completes it.
        if payment.status is PaymentStatus.PENDING:
            payment.status = PaymentStatus.FAILED
        await session.flush()

    async def _charge_refunded(
        self, session: AsyncSession, charge: dict[str, Any], created: datetime
    ) -> None:
        """``amount_refunded`` is the charge's running total, so applying it is idempotent and
        never adds to what the refund endpoint already recorded."""
        intent = stripe_id(charge.get("payment_intent"))
        total = charge.get("amount_refunded")
        if not intent or not isinstance(total, int):
            return
        payment = await lock_payment(session, Payment.stripe_payment_intent_id == intent)
        if payment is None and (payment_id := as_uuid(metadata_of(charge).get("payment_id"))):
            # The refund overtook the checkout's completion event.
            payment = await lock_payment(session, Payment.id == payment_id)
            if payment is not None and payment.stripe_payment_intent_id is None:
                payment.stripe_payment_intent_id = intent
        if payment is None:
            logger.warning("charge.refunded for payment intent %s matches no payment", intent)
            return
        if payment.status not in PAID_STATUSES:
            if charge.get("status") != "succeeded":
                return
            await self._succeeded(session, payment)
        apply_refunded_total(payment, total)
        await session.flush()

    async def _subscription_changed(
        self, session: AsyncSession, subscription: dict[str, Any], created: datetime
    ) -> None:
        await subscriptions.apply(session, subscription, created)

    async def _invoice_user(
        self, session: AsyncSession, invoice: Mapping[str, Any]
    ) -> uuid.UUID | None:
        customer = stripe_id(invoice.get("customer"))
        if customer:
            user_id = await session.scalar(
                select(User.id).where(User.stripe_customer_id == customer)
            )
            if user_id is not None:
                return user_id
        subscription_id = stripe_id(invoice.get("subscription")) or stripe_id(
            dig(invoice, "parent", "subscription_details", "subscription")
        )
        if subscription_id:
            return await session.scalar(
                select(Subscription.user_id).where(
                    Subscription.stripe_subscription_id == subscription_id
                )
            )
        return None

    @staticmethod
    def _invoice_payment_intent(invoice: Mapping[str, Any]) -> str | None:
        legacy = stripe_id(invoice.get("payment_intent"))
        if legacy:
            return legacy
        for item in list_data(invoice.get("payments")):
            intent = stripe_id(dig(item, "payment", "payment_intent"))
            if intent:
                return intent
        return None

    async def _invoice_paid(
        self, session: AsyncSession, invoice: dict[str, Any], created: datetime
    ) -> None:
        """One SUBSCRIPTION payment per paid invoice (a failed one that is paid later becomes
        SUCCEEDED). Invoices of nothing (a trial) are not payments."""
        amount = invoice.get("amount_paid")
        if not isinstance(amount, int) or amount <= 0:
            return
        stmt = await self._invoice_payment(session, invoice, amount, PaymentStatus.SUCCEEDED)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[Payment.stripe_invoice_id],
                set_={
                    "status": PaymentStatus.SUCCEEDED,
                    "amount_cents": stmt.excluded.amount_cents,
                    "stripe_payment_intent_id": func.coalesce(
                        Payment.stripe_payment_intent_id, stmt.excluded.stripe_payment_intent_id
                    ),
                },
                where=Payment.status.in_([PaymentStatus.PENDING, PaymentStatus.FAILED]),
            )
        )

    async def _invoice_payment(
        self, session: AsyncSession, invoice: dict[str, Any], amount: int, status: PaymentStatus
    ) -> Insert:
        """The SUBSCRIPTION payment row an invoice stands for."""
        return insert(Payment).values(
            id=uuid.uuid4(),
            user_id=await self._invoice_user(session, invoice),
            course_id=None,
            kind=PaymentKind.SUBSCRIPTION,
            status=status,
            stripe_invoice_id=invoice["id"],
            stripe_payment_intent_id=self._invoice_payment_intent(invoice),
            amount_cents=amount,
            currency=str(invoice.get("currency") or "usd")[:3],
            refunded_amount_cents=0,
        )

    async def _invoice_payment_failed(
        self, session: AsyncSession, invoice: dict[str, Any], created: datetime
    ) -> None:
        """Recorded as a FAILED subscription payment, unless the invoice was paid meanwhile.
        Access follows the subscription's status, which Stripe updates (past_due, unpaid,
        canceled) in subscription events."""
        amount = invoice.get("amount_due")
        if not isinstance(amount, int) or amount <= 0:
            return
        stmt = await self._invoice_payment(session, invoice, amount, PaymentStatus.FAILED)
        await session.execute(stmt.on_conflict_do_nothing())


stripe_events = StripeEventService()

__all__ = ["StripeEventService", "stripe_events"]
