from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from momentum_api.schemas import Strict
from momentum_domain.commerce.entitlements import ACTIVE_SUBSCRIPTION_STATUSES
from momentum_domain.commerce.models import Payment, PaymentKind, PaymentStatus, Subscription


class CheckoutOut(msgspec.Struct):
    checkout_url: str
    session_id: str


class SubscriptionCheckoutIn(Strict):
    interval: Literal["month", "year"]


class RefundIn(Strict):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern=r"\S")]
    # Omitted: refund whatever remains.
    amount_cents: Annotated[int, msgspec.Meta(ge=1, le=100_000_000)] | None = None


class PaymentOut(msgspec.Struct):
    id: uuid.UUID
    kind: PaymentKind
    status: PaymentStatus
    course_id: uuid.UUID | None
    course_title: str | None
    amount_cents: int
    currency: str
    refunded_amount_cents: int
    created_at: datetime
    updated_at: datetime


class AdminPaymentOut(msgspec.Struct):
    id: uuid.UUID
    user_id: uuid.UUID | None
    course_id: uuid.UUID | None
    kind: PaymentKind
    status: PaymentStatus
    amount_cents: int
    currency: str
    refunded_amount_cents: int
    refund_reason: str | None
    stripe_checkout_session_id: str | None
    stripe_payment_intent_id: str | None
    stripe_invoice_id: str | None
    created_at: datetime
    updated_at: datetime


class RefundOut(msgspec.Struct):
    refund_id: str
    refunded_cents: int
    payment: AdminPaymentOut


class SubscriptionOut(msgspec.Struct):
    id: uuid.UUID
    status: str
    is_active: bool
    interval: str
    current_period_end: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None


class WebhookReceipt(msgspec.Struct):
    received: bool
    duplicate: bool


def payment_out(payment: Payment, course_title: str | None) -> PaymentOut:
    return PaymentOut(
        id=payment.id,
        kind=payment.kind,
        status=payment.status,
        course_id=payment.course_id,
        course_title=course_title,
        amount_cents=payment.amount_cents,
        currency=payment.currency,
        refunded_amount_cents=payment.refunded_amount_cents,
        created_at=payment.created_at,
        updated_at=payment.updated_at,
    )


def admin_payment_out(payment: Payment) -> AdminPaymentOut:
    return AdminPaymentOut(
        id=payment.id,
        user_id=payment.user_id,
        course_id=payment.course_id,
        kind=payment.kind,
        status=payment.status,
        amount_cents=payment.amount_cents,
        currency=payment.currency,
        refunded_amount_cents=payment.refunded_amount_cents,
        refund_reason=payment.refund_reason,
        stripe_checkout_session_id=payment.stripe_checkout_session_id,
        stripe_payment_intent_id=payment.stripe_payment_intent_id,
        stripe_invoice_id=payment.stripe_invoice_id,
        created_at=payment.created_at,
        updated_at=payment.updated_at,
    )


def subscription_out(subscription: Subscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=subscription.id,
        status=subscription.status,
        is_active=subscription.status in ACTIVE_SUBSCRIPTION_STATUSES,
        interval=subscription.interval,
        current_period_end=subscription.current_period_end,
        cancel_at_period_end=subscription.cancel_at_period_end,
        canceled_at=subscription.canceled_at,
    )
