"""Refunds by administrators through Stripe: partial and full, never more than remains, never
counted twice when Stripe's charge.refunded webhook reports the same refund."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_dev.fakes.stripe import FakeStripe
from momentum_domain.audit.models import AuditLog
from momentum_domain.commerce.models import Payment, PaymentStatus
from tests.fixtures.app import Account, MakeAccount, MakeCourse
from tests.fixtures.commerce import Buy, Client, deliver


async def _payment(sessions: async_sessionmaker[AsyncSession], payment_id: uuid.UUID) -> Payment:
    async with sessions() as session:
        payment = await session.get(Payment, payment_id)
    assert payment is not None
    return payment


async def test_partial_then_full_refund_ends_access(
    shop: Client,
    fake_stripe: FakeStripe,
    make_course: MakeCourse,
    learner: Account,
    admin_account: Account,
    buy: Buy,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    course = await make_course("Bread", price_cents=1900)
    purchase = await buy(learner, course)
    url = f"/admin/payments/{purchase.payment_id}/refund"

    partial = await shop.post(
        url, json={"amount_cents": 500, "reason": "Late video"}, headers=admin_account.headers
    )
    assert partial.status_code == 200, partial.text
    body = partial.json()
    assert body["refund_id"].startswith("re_")
    assert body["refunded_cents"] == 500
    assert body["payment"]["status"] == "PARTIALLY_REFUNDED"
    assert body["payment"]["refunded_amount_cents"] == 500
    assert body["payment"]["refund_reason"] == "Late video"
    [call] = fake_stripe.requests_to("POST", "/v1/refunds")
    assert call.params == {
        "payment_intent": purchase.payment_intent_id,
        "amount": "500",
        "reason": "requested_by_customer",
        "metadata": {"payment_id": str(purchase.payment_id), "reason": "Late video"},
    }
    assert call.idempotency_key == f"refund:{purchase.payment_id}:0:500"
    # A partial refund keeps the course open.
    assert (
        await shop.put(f"/me/enrollments/{course.id}", headers=learner.headers)
    ).status_code == 200

    rest = await shop.post(url, json={"reason": "Customer asked"}, headers=admin_account.headers)
    assert rest.status_code == 200, rest.text
    assert rest.json()["refunded_cents"] == 1400
    assert rest.json()["payment"]["status"] == "REFUNDED"
    second = fake_stripe.requests_to("POST", "/v1/refunds")[1]
    assert second.params["amount"] == "1400"
    assert second.idempotency_key == f"refund:{purchase.payment_id}:500:1400"
    assert fake_stripe.charge_of(purchase.payment_intent_id)["refunded"] is True

    payment = await _payment(sessions, purchase.payment_id)
    assert (payment.status, payment.refunded_amount_cents, payment.refund_reason) == (
        PaymentStatus.REFUNDED,
        1900,
        "Customer asked",
    )
    enroll = await shop.put(f"/me/enrollments/{course.id}", headers=learner.headers)
    assert enroll.status_code == 403
    async with sessions() as session:
        entries = list(
            await session.scalars(
                select(AuditLog)
                .where(AuditLog.action == "payment.refund")
                .order_by(AuditLog.created_at)
            )
        )
    assert [(e.actor_id, e.resource_id) for e in entries] == [
        (admin_account.user.id, str(purchase.payment_id))
    ] * 2
    assert [e.details["amount_cents"] for e in entries] == [500, 1400]
    assert entries[0].details["reason"] == "Late video"
    # Nothing remains: another refund is a conflict, and Stripe is not asked.
    again = await shop.post(url, json={"reason": "Again"}, headers=admin_account.headers)
    assert again.status_code == 409
    assert len(fake_stripe.requests_to("POST", "/v1/refunds")) == 2


async def test_refunding_more_than_remains_is_a_conflict(
    shop: Client,
    fake_stripe: FakeStripe,
    make_course: MakeCourse,
    learner: Account,
    admin_account: Account,
    buy: Buy,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    course = await make_course("Bread", price_cents=1900)
    purchase = await buy(learner, course)
    url = f"/admin/payments/{purchase.payment_id}/refund"
    await shop.post(url, json={"amount_cents": 1000, "reason": "a"}, headers=admin_account.headers)
    over = await shop.post(
        url, json={"amount_cents": 901, "reason": "b"}, headers=admin_account.headers
    )
    assert over.status_code == 409
    assert over.json()["refundable_cents"] == 900
    assert len(fake_stripe.requests_to("POST", "/v1/refunds")) == 1
    payment = await _payment(sessions, purchase.payment_id)
    assert (payment.status, payment.refunded_amount_cents) == (
        PaymentStatus.PARTIALLY_REFUNDED,
        1000,
    )


async def test_concurrent_refunds_of_the_rest_refund_once(
    shop: Client,
    fake_stripe: FakeStripe,
    make_course: MakeCourse,
    learner: Account,
    admin_account: Account,
    buy: Buy,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    course = await make_course("Bread", price_cents=1900)
    purchase = await buy(learner, course)
    url = f"/admin/payments/{purchase.payment_id}/refund"
    responses = await asyncio.gather(
        *(shop.post(url, json={"reason": "dup"}, headers=admin_account.headers) for _ in range(4))
    )
    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409]
    assert len(fake_stripe.refunds) == 1
    assert (await _payment(sessions, purchase.payment_id)).refunded_amount_cents == 1900


async def test_the_webhook_after_an_api_refund_does_not_count_it_again(
    shop: Client,
    fake_stripe: FakeStripe,
    make_course: MakeCourse,
    learner: Account,
    admin_account: Account,
    buy: Buy,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    course = await make_course("Bread", price_cents=1900)
    purchase = await buy(learner, course)
    url = f"/admin/payments/{purchase.payment_id}/refund"
    await shop.post(url, json={"amount_cents": 500, "reason": "a"}, headers=admin_account.headers)
    after_first = fake_stripe.charge_of(purchase.payment_intent_id)
    first_event = fake_stripe.event("charge.refunded", after_first)
    assert (await deliver(shop, first_event)).status_code == 200
    assert (await _payment(sessions, purchase.payment_id)).refunded_amount_cents == 500

    await shop.post(url, json={"reason": "b"}, headers=admin_account.headers)
    full_event = fake_stripe.event(
        "charge.refunded", fake_stripe.charge_of(purchase.payment_intent_id)
    )
    # Late, repeated and out of order: the running total only ever moves forward.
    for event in (full_event, first_event, full_event):
        await deliver(shop, event)
    await deliver(shop, fake_stripe.event("charge.refunded", after_first))
    payment = await _payment(sessions, purchase.payment_id)
    assert (payment.status, payment.refunded_amount_cents) == (PaymentStatus.REFUNDED, 1900)


async def test_a_refund_made_in_stripes_dashboard_arrives_by_webhook(
    shop: Client,
    fake_stripe: FakeStripe,
    make_course: MakeCourse,
    learner: Account,
    admin_account: Account,
    buy: Buy,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    course = await make_course("Bread", price_cents=1900)
    purchase = await buy(learner, course)
    charge = fake_stripe.refund_in_dashboard(purchase.payment_intent_id, 300)
    await deliver(shop, fake_stripe.event("charge.refunded", charge))
    payment = await _payment(sessions, purchase.payment_id)
    assert (payment.status, payment.refunded_amount_cents) == (
        PaymentStatus.PARTIALLY_REFUNDED,
        300,
    )
    # The default refund is what remains after it.
    rest = await shop.post(
        f"/admin/payments/{purchase.payment_id}/refund",
        json={"reason": "rest"},
        headers=admin_account.headers,
    )
    assert rest.status_code == 200
    assert fake_stripe.requests_to("POST", "/v1/refunds")[0].params["amount"] == "1600"
    assert rest.json()["payment"]["status"] == "REFUNDED"


async def test_a_failed_refund_is_retried_with_the_same_key(
    shop: Client,
    fake_stripe: FakeStripe,
    make_course: MakeCourse,
    learner: Account,
    admin_account: Account,
    buy: Buy,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    course = await make_course("Bread", price_cents=1900)
    purchase = await buy(learner, course)
    url = f"/admin/payments/{purchase.payment_id}/refund"
    fake_stripe.fail_next(500, times=3, path="/v1/refunds")
    down = await shop.post(url, json={"reason": "r"}, headers=admin_account.headers)
    assert down.status_code == 503
    assert (await _payment(sessions, purchase.payment_id)).status is PaymentStatus.SUCCEEDED
    async with sessions() as session:
        audited = await session.scalar(select(AuditLog).where(AuditLog.action == "payment.refund"))
    assert audited is None

    again = await shop.post(url, json={"reason": "r"}, headers=admin_account.headers)
    assert again.status_code == 200
    keys = {r.idempotency_key for r in fake_stripe.requests_to("POST", "/v1/refunds")}
    assert keys == {f"refund:{purchase.payment_id}:0:1900"}
    assert len(fake_stripe.refunds) == 1


async def test_refund_requests_that_cannot_be_served(
    shop: Client,
    fake_stripe: FakeStripe,
    make_course: MakeCourse,
    make_account: MakeAccount,
    learner: Account,
    admin_account: Account,
) -> None:
    course = await make_course("Bread", price_cents=1900)
    started = await shop.post(f"/checkout/course/{course.id}", headers=learner.headers)
    listed = await shop.get("/admin/payments", headers=admin_account.headers)
    [pending] = listed.json()["items"]
    assert pending["stripe_checkout_session_id"] == started.json()["session_id"]
    url = f"/admin/payments/{pending['id']}/refund"

    not_paid = await shop.post(url, json={"reason": "r"}, headers=admin_account.headers)
    assert not_paid.status_code == 409
    assert not_paid.json()["status"] == "PENDING"
    unknown = await shop.post(
        f"/admin/payments/{uuid.uuid4()}/refund",
        json={"reason": "r"},
        headers=admin_account.headers,
    )
    assert unknown.status_code == 404
    assert (await shop.post(url, json={"reason": "r"}, headers=learner.headers)).status_code == 403
    for body in ({"reason": ""}, {"reason": "   "}, {"amount_cents": 0, "reason": "r"}, {}):
        invalid = await shop.post(url, json=body, headers=admin_account.headers)
        assert invalid.status_code == 400, body
    assert fake_stripe.requests_to("POST", "/v1/refunds") == []
