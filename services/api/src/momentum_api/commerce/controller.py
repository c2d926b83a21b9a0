"""Checkout, Stripe's webhook, a learner's payments and subscription, and payment
administration. The business rules live in ``momentum_domain.commerce.service``."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import (
    Body,
    FromPath,
    FromQuery,
    HeaderParameter,
    JSONBody,
    QueryParameter,
)

from momentum_api.admin.writes import record_admin_action
from momentum_api.commerce.schemas import (
    AdminPaymentOut,
    CheckoutOut,
    PaymentOut,
    RefundIn,
    RefundOut,
    SubscriptionCheckoutIn,
    SubscriptionOut,
    WebhookReceipt,
    admin_payment_out,
    payment_out,
    subscription_out,
)
from momentum_api.deps import AppSettings, DbSession, StripeGatewayDep
from momentum_api.identity.guards import admin, authenticated
from momentum_api.identity.principal import Principal
from momentum_api.schemas import Offset, Page
from momentum_domain.commerce.models import PaymentStatus
from momentum_domain.commerce.service import commerce
from momentum_domain.commerce.stripe_client import construct_event
from momentum_domain.errors import NotFound

UserRequest = Request[Principal, Any, Any]
STRIPE_DOWN = {
    503: ResponseSpec(None, description="Stripe is unreachable; try again shortly"),
    # Not retryable: the problem type is .../payments-not-configured.
    500: ResponseSpec(
        None, description="Stripe is not configured (a placeholder MOMENTUM_STRIPE_API_KEY)"
    ),
}


class CheckoutController(Controller):
    path = "/checkout"
    tags = ["Payments"]
    guards = [authenticated]
    security = [{"BearerToken": []}]

    @post(
        "/course/{course_id:uuid}",
        operation_id="createCourseCheckout",
        status_code=200,
        summary="Buy a course: a Stripe Checkout Session",
        responses={
            409: ResponseSpec(None, description="Already entitled, or not sold on its own"),
            **STRIPE_DOWN,
        },
    )
    async def course(
        self,
        request: UserRequest,
        db_session: DbSession,
        settings: AppSettings,
        stripe_gateway: StripeGatewayDep,
        course_id: FromPath[uuid.UUID],
    ) -> CheckoutOut:
        """Redirect the learner to `checkout_url`. Repeating the request while that session is
        open returns the same session; after it expires, a new one. Access opens when Stripe's
        `checkout.session.completed` event arrives."""
        started = await commerce.start_course_checkout(
            db_session, stripe_gateway, settings, user_id=request.user.id, course_ref=str(course_id)
        )
        return CheckoutOut(checkout_url=started.checkout_url, session_id=started.session_id)

    @post(
        "/subscription",
        operation_id="createSubscriptionCheckout",
        status_code=200,
        summary="Subscribe to premium: a Stripe Checkout Session",
        responses={409: ResponseSpec(None, description="Already premium"), **STRIPE_DOWN},
    )
    async def subscription(
        self,
        request: UserRequest,
        db_session: DbSession,
        settings: AppSettings,
        stripe_gateway: StripeGatewayDep,
        data: JSONBody[SubscriptionCheckoutIn],
    ) -> CheckoutOut:
        """Monthly or yearly, at the configured Stripe prices. Premium opens every course once
        Stripe reports the subscription active."""
        started = await commerce.start_subscription_checkout(
            db_session, stripe_gateway, settings, user_id=request.user.id, interval=data.interval
        )
        return CheckoutOut(checkout_url=started.checkout_url, session_id=started.session_id)


class StripeWebhookController(Controller):
    path = "/webhooks/stripe"
    tags = ["Webhooks"]

    @post(
        "/",
        operation_id="receiveStripeWebhook",
        status_code=200,
        summary="Stripe events",
        responses={
            400: ResponseSpec(None, description="Bad or stale signature, or not a Stripe event")
        },
    )
    async def receive(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        data: Annotated[dict[str, Any], Body(description="A Stripe event object")],
        signature: Annotated[
            str,
            HeaderParameter(
                name="Stripe-Signature",
                min_length=1,
                description="Stripe's signature over the raw body: `t=<time>,v1=<hmac>`",
            ),
        ],
    ) -> WebhookReceipt:
        """Signed by Stripe (`Stripe-Signature`, checked over the raw body with a 300 s
        tolerance). Each event is applied once, in the transaction that records its id; a
        redelivery is acknowledged with `duplicate: true` and changes nothing. Unknown event
        types are recorded and acknowledged."""
        # The signature covers the raw bytes, not the parsed event.
        event = construct_event(await request.body(), signature, settings)
        first_time = await commerce.handle_event(db_session, event)
        return WebhookReceipt(received=True, duplicate=not first_time)


class MyPaymentsController(Controller):
    path = "/me"
    tags = ["Payments"]
    guards = [authenticated]
    security = [{"BearerToken": []}]

    @get("/payments", operation_id="listMyPayments", summary="My payments")
    async def payments(
        self,
        request: UserRequest,
        db_session: DbSession,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
        offset: Offset = 0,
    ) -> Page[PaymentOut]:
        """Newest first: purchases, subscription invoices, failures and refunds. Checkouts still
        open are not listed."""
        rows, total = await commerce.my_payments(
            db_session, request.user.id, limit=limit, offset=offset
        )
        return Page([payment_out(payment, title) for payment, title in rows], total, limit, offset)

    @get(
        "/subscription",
        operation_id="getMySubscription",
        summary="My premium subscription",
        responses={404: ResponseSpec(None, description="No subscription")},
    )
    async def subscription(self, request: UserRequest, db_session: DbSession) -> SubscriptionOut:
        found = await commerce.my_subscription(db_session, request.user.id)
        if found is None:
            raise NotFound("You have no subscription.")
        return subscription_out(found)

    @post(
        "/subscription/cancel",
        operation_id="cancelMySubscription",
        status_code=200,
        summary="Cancel my subscription at the end of the paid period",
        responses={404: ResponseSpec(None, description="Nothing to cancel"), **STRIPE_DOWN},
    )
    async def cancel(
        self, request: UserRequest, db_session: DbSession, stripe_gateway: StripeGatewayDep
    ) -> SubscriptionOut:
        """Premium lasts until `current_period_end`; `cancel_at_period_end` becomes true.
        Repeating it changes nothing."""
        cancelled = await commerce.cancel_subscription(db_session, stripe_gateway, request.user.id)
        return subscription_out(cancelled)


class PaymentAdminController(Controller):
    path = "/admin/payments"
    tags = ["Admin: payments"]
    guards = [admin]
    security = [{"BearerToken": []}]

    @get("/", operation_id="adminListPayments", summary="List payments")
    async def list_payments(
        self,
        db_session: DbSession,
        status: FromQuery[PaymentStatus | None] = None,
        user_id: FromQuery[uuid.UUID | None] = None,
        course_id: FromQuery[uuid.UUID | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
        offset: Offset = 0,
    ) -> Page[AdminPaymentOut]:
        """Newest first, optionally by status, user and course."""
        found, total = await commerce.list_payments(
            db_session,
            status=status,
            user_id=user_id,
            course_id=course_id,
            limit=limit,
            offset=offset,
        )
        return Page([admin_payment_out(p) for p in found], total, limit, offset)

    @post(
        "/{payment_id:uuid}/refund",
        operation_id="adminRefundPayment",
        status_code=200,
        summary="Refund a payment fully or partly",
        responses={
            404: ResponseSpec(None, description="No such payment"),
            409: ResponseSpec(None, description="Not refundable, or more than remains"),
            **STRIPE_DOWN,
        },
    )
    async def refund(
        self,
        request: UserRequest,
        db_session: DbSession,
        stripe_gateway: StripeGatewayDep,
        payment_id: FromPath[uuid.UUID],
        data: JSONBody[RefundIn],
    ) -> RefundOut:
        """Without `amount_cents`, refunds whatever remains. A full refund of a course purchase
        ends the buyer's access to the course. Audited as `payment.refund`."""
        payment, refund = await commerce.refund(
            db_session,
            stripe_gateway,
            payment_id=payment_id,
            amount_cents=data.amount_cents,
            reason=data.reason,
        )
        await record_admin_action(
            request,
            db_session,
            action="payment.refund",
            resource_type="payment",
            resource_id=payment.id,
            details={
                "refund_id": refund.id,
                "amount_cents": refund.amount,
                "reason": data.reason,
                "refunded_total_cents": payment.refunded_amount_cents,
                "status": payment.status.value,
            },
        )
        return RefundOut(
            refund_id=refund.id, refunded_cents=refund.amount, payment=admin_payment_out(payment)
        )


__all__ = [
    "CheckoutController",
    "MyPaymentsController",
    "PaymentAdminController",
    "StripeWebhookController",
]
