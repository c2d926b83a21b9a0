"""Checkout, Stripe's webhook, a learner's payments and subscription, and payment
administration. The business rules live in ``momentum_domain.commerce``."""

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
from momentum_api.origin import request_origin
from momentum_api.schemas import Offset, Page
from momentum_domain.commerce.after_checkout import CheckoutOutcome, Plans, after_checkout
from momentum_domain.commerce.checkout import checkout
from momentum_domain.commerce.models import PaymentStatus
from momentum_domain.commerce.payments import PaymentFilter, payments
from momentum_domain.commerce.refunds import RefundRequest, refunds
from momentum_domain.commerce.stripe_client import construct_event
from momentum_domain.commerce.stripe_events import stripe_events
from momentum_domain.commerce.subscriptions import subscriptions
from momentum_domain.kit.pagination import PageRequest

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
        started = await checkout.start_course(
            db_session, stripe_gateway, settings, user_id=request.user.id, course_id=course_id
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
        started = await checkout.start_subscription(
            db_session, stripe_gateway, settings, user_id=request.user.id, interval=data.interval
        )
        return CheckoutOut(checkout_url=started.checkout_url, session_id=started.session_id)

    @get(
        "/sessions/{session_id:str}",
        operation_id="getCheckoutSession",
        summary="What came of my course checkout",
        responses={404: ResponseSpec(None, description="No course checkout of mine by that id")},
    )
    async def outcome(
        self, request: UserRequest, db_session: DbSession, session_id: FromPath[str]
    ) -> CheckoutOutcome:
        """For the success page (`session_id` is the one Stripe puts in its URL): the payment's
        status, the course bought, and whether the buyer is enrolled and may open it. Read from
        our database, which Stripe's webhook keeps current, so polling it costs no Stripe call.
        `PENDING` means Stripe's event has not arrived yet. A premium checkout's outcome is
        `GET /me/subscription`."""
        return await after_checkout.outcome(
            db_session, user_id=request.user.id, session_id=session_id
        )


class PlanController(Controller):
    path = "/plans"
    tags = ["Payments"]

    @get("/", operation_id="listPlans", summary="What can be bought, and for how much")
    async def plans(self, db_session: DbSession, settings: AppSettings) -> Plans:
        """The premium subscription, monthly and yearly (it opens every course), and per
        currency the number and price range of the published courses sold on their own."""
        return await after_checkout.plans(db_session, settings)


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
        first_time = await stripe_events.handle(db_session, event)
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
        page = await payments.mine(db_session, request.user.id, PageRequest(limit, offset))
        rows = [payment_out(payment, title) for payment, title in page.items]
        return Page(rows, page.total, limit, offset)

    @get(
        "/subscription",
        operation_id="getMySubscription",
        summary="My premium subscription",
        responses={404: ResponseSpec(None, description="No subscription")},
    )
    async def subscription(self, request: UserRequest, db_session: DbSession) -> SubscriptionOut:
        return subscription_out(await subscriptions.current(db_session, request.user.id))

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
        cancelled = await subscriptions.cancel(db_session, stripe_gateway, request.user.id)
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
        found = await payments.search(
            db_session, PaymentFilter(status, user_id, course_id), PageRequest(limit, offset)
        )
        return Page([admin_payment_out(p) for p in found.items], found.total, limit, offset)

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
        settings: AppSettings,
        stripe_gateway: StripeGatewayDep,
        payment_id: FromPath[uuid.UUID],
        data: JSONBody[RefundIn],
    ) -> RefundOut:
        """Without `amount_cents`, refunds whatever remains. A full refund of a course purchase
        ends the buyer's access to the course. Audited as `payment.refund`."""
        refunded = await refunds.refund(
            db_session,
            stripe_gateway,
            payment_id,
            RefundRequest(data.reason, data.amount_cents),
            actor_id=request.user.id,
            origin=request_origin(request, settings),
        )
        return RefundOut(
            refund_id=refunded.refund.id,
            refunded_cents=refunded.refund.amount,
            payment=admin_payment_out(refunded.payment),
        )


__all__ = [
    "CheckoutController",
    "MyPaymentsController",
    "PaymentAdminController",
    "PlanController",
    "StripeWebhookController",
]
