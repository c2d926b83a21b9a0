"""Refunds made by an administrator through Stripe, and the refunded total a payment carries
(which Stripe's ``charge.refunded`` event also sets).

A refund's idempotency key is ``refund:{payment_id}:{refunded so far}:{amount}``: the same
refund retried replays; a second refund of the same amount, made after the first was recorded,
is a new refund."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.audit.service import RequestOrigin, audit
from momentum_domain.commerce.models import Payment, PaymentStatus
from momentum_domain.commerce.payments import lock_payment
from momentum_domain.commerce.stripe_client import RefundInfo, StripeGateway
from momentum_domain.errors import Conflict, NotFound
from momentum_domain.kit.unit_of_work import commit

REFUNDABLE_STATUSES = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED)
PAID_STATUSES = (*REFUNDABLE_STATUSES, PaymentStatus.REFUNDED)
# Refunds in these states move money back (or will): they count as refunded.
COUNTED_REFUND_STATUSES = ("succeeded", "pending", "requires_action")


@dataclass(frozen=True, slots=True)
class RefundRequest:
    reason: str
    # None: whatever remains.
    amount_cents: int | None = None


@dataclass(frozen=True, slots=True)
class Refunded:
    payment: Payment
    refund: RefundInfo


def apply_refunded_total(payment: Payment, total: int) -> None:
    """Set the payment's refunded total (never lowering it, never past its amount) and the
    status that follows."""
    refunded = min(payment.amount_cents, max(payment.refunded_amount_cents, total))
    payment.refunded_amount_cents = refunded
    if refunded >= payment.amount_cents:
        payment.status = PaymentStatus.REFUNDED
    elif refunded > 0:
        payment.status = PaymentStatus.PARTIALLY_REFUNDED


class RefundService:
    async def refund(
        self,
        session: AsyncSession,
        gateway: StripeGateway,
        payment_id: uuid.UUID,
        request: RefundRequest,
        *,
        actor_id: uuid.UUID,
        origin: RequestOrigin,
    ) -> Refunded:
        """Refund a payment fully (the default: whatever remains) or partly through Stripe,
        audited as ``payment.refund``. The payment row stays locked during the call, so
        concurrent refunds and the ``charge.refunded`` webhook wait for it and then see its
        result."""
        payment = await lock_payment(session, Payment.id == payment_id)
        if payment is None:
            raise NotFound("No such payment.")
        if payment.status not in REFUNDABLE_STATUSES or not payment.stripe_payment_intent_id:
            raise Conflict(
                f"A {payment.status.value} payment cannot be refunded.",
                extra={"status": payment.status.value},
            )
        remaining = payment.amount_cents - payment.refunded_amount_cents
        amount = remaining if request.amount_cents is None else request.amount_cents
        if amount > remaining:
            raise Conflict(
                f"Only {remaining} of {payment.amount_cents} cents remain to be refunded.",
                extra={"refundable_cents": remaining},
            )
        refund = await gateway.create_refund(
            {
                "payment_intent": payment.stripe_payment_intent_id,
                "amount": amount,
                "reason": "requested_by_customer",
                "metadata": {"payment_id": str(payment.id), "reason": request.reason[:500]},
            },
            idempotency_key=f"refund:{payment.id}:{payment.refunded_amount_cents}:{amount}",
        )
        if refund.status in COUNTED_REFUND_STATUSES:
            apply_refunded_total(payment, payment.refunded_amount_cents + refund.amount)
        payment.refund_reason = request.reason
        await session.flush()
        await audit.record(
            session,
            actor_id=actor_id,
            action="payment.refund",
            resource_type="payment",
            resource_id=payment.id,
            origin=origin,
            details={
                "refund_id": refund.id,
                "amount_cents": refund.amount,
                "reason": request.reason,
                "refunded_total_cents": payment.refunded_amount_cents,
                "status": payment.status.value,
            },
        )
        await commit(session)
        return Refunded(payment, refund)


refunds = RefundService()

__all__ = [
    "PAID_STATUSES",
    "RefundRequest",
    "RefundService",
    "Refunded",
    "apply_refunded_total",
    "refunds",
]
