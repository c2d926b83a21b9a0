"""Stripe's webhook: signatures checked with Stripe's library, each event applied once, and
subscription state taken from the object an event carries, whatever order events arrive in."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_dev.fakes.stripe import FakeStripe
from momentum_dev.fakes.stripe_wire import sign
from momentum_domain.audit.models import AuditLog
from momentum_domain.commerce.models import (
    Payment,
    PaymentKind,
    PaymentStatus,
    Subscription,
)
from momentum_domain.kit.webhooks import ProcessedWebhookEvent
from momentum_domain.learning.models import Enrollment
from momentum_domain.users.models import Role, User
from tests.fixtures.app import Account, MakeAccount, MakeCourse
from tests.fixtures.commerce import WEBHOOK_SECRET, Client, Subscribe, deliver
from tests.fixtures.schedule import open_every_day


async def _count(sessions: async_sessionmaker[AsyncSession], model: Any) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _payment(sessions: async_sessionmaker[AsyncSession], session_id: str) -> Payment:
    async with sessions() as session:
        payment = await session.scalar(
            select(Payment).where(Payment.stripe_checkout_session_id == session_id)
        )
    assert payment is not None
    return payment


async def _role(sessions: async_sessionmaker[AsyncSession], user_id: uuid.UUID) -> Role:
    async with sessions() as session:
        user = await session.get(User, user_id)
    assert user is not None
    return user.role


async def _start(shop: Client, account: Account, course: Any) -> str:
    response = await shop.post(f"/checkout/course/{course.id}", headers=account.headers)
    assert response.status_code == 200, response.text
    session_id: str = response.json()["session_id"]
    return session_id


async def test_the_same_event_ten_times_makes_one_payment_and_one_entitlement(
    shop: Client,
    fake_stripe: FakeStripe,
    make_course: MakeCourse,
    learner: Account,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    course = await make_course("Bread", price_cents=2500)
    session_id = await _start(shop, learner, course)
    completed = fake_stripe.complete_checkout(session_id)
    event = fake_stripe.event("checkout.session.completed", completed)

    responses = await asyncio.gather(*(deliver(shop, event) for _ in range(10)))
    assert [r.status_code for r in responses] == [200] * 10
    assert sorted(r.json()["duplicate"] for r in responses) == [False] + [True] * 9
    assert await _count(sessions, ProcessedWebhookEvent) == 1
    assert await _count(sessions, Payment) == 1
    payment = await _payment(sessions, session_id)
    assert payment.status is PaymentStatus.SUCCEEDED
    assert payment.stripe_payment_intent_id == completed["payment_intent"]
    assert payment.amount_cents == 2500

    enrollments = await asyncio.gather(
        *(shop.put(f"/me/enrollments/{course.id}", headers=learner.headers) for _ in range(3))
    )
    assert [r.status_code for r in enrollments] == [200] * 3
    assert await _count(sessions, Enrollment) == 1
    await open_every_day(sessions, learner.user.id, course.id)
    lesson = await shop.get(f"/courses/{course.slug}/lessons/2", headers=learner.headers)
    assert lesson.status_code == 200


async def test_bad_signatures_and_stale_timestamps_are_refused_and_store_nothing(
    shop: Client,
    fake_stripe: FakeStripe,
    make_course: MakeCourse,
    learner: Account,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    course = await make_course("Bread", price_cents=2500)
    session_id = await _start(shop, learner, course)
    event = fake_stripe.event(
        "checkout.session.completed", fake_stripe.complete_checkout(session_id)
    )
    payload = json.dumps(event)
    now = int(time.time())
    tampered = payload.replace('"amount_total": 2500', '"amount_total": 1')
    assert tampered != payload
    deliveries = {
        "wrong secret": (payload, sign(payload, "whsec_someone_else")),
        "stale timestamp": (payload, sign(payload, WEBHOOK_SECRET, now - 301)),
        "tampered body": (tampered, sign(payload, WEBHOOK_SECRET)),
        "no v1 signature": (payload, f"t={now}"),
        "garbage header": (payload, "nonsense"),
        "no header": (payload, None),
    }
    for name, (body, signature) in deliveries.items():
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["Stripe-Signature"] = signature
        response = await shop.post("/webhooks/stripe", content=body, headers=headers)
        assert response.status_code == 400, name
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "Stripe-Signature" in response.json()["detail"], name
    # Signed correctly but not an event.
    for body in ("not json", json.dumps({"id": "evt_1", "type": "charge.refunded"})):
        signed_garbage = await shop.post(
            "/webhooks/stripe",
            content=body,
            headers={"Stripe-Signature": sign(body, WEBHOOK_SECRET)},
        )
        assert signed_garbage.status_code == 400
    assert await _count(sessions, ProcessedWebhookEvent) == 0
    assert (await _payment(sessions, session_id)).status is PaymentStatus.PENDING

    # Within the tolerance the same event is accepted.
    accepted = await deliver(shop, event, timestamp=now - 290)
    assert accepted.status_code == 200
    assert (await _payment(sessions, session_id)).status is PaymentStatus.SUCCEEDED


async def test_unknown_event_types_are_stored_and_acknowledged(
    shop: Client, fake_stripe: FakeStripe, sessions: async_sessionmaker[AsyncSession]
) -> None:
    event = fake_stripe.event("customer.updated", {"id": "cus_123", "object": "customer"})
    response = await deliver(shop, event)
    assert response.status_code == 200
    assert response.json() == {"received": True, "duplicate": False}
    async with sessions() as session:
        stored = await session.scalar(select(ProcessedWebhookEvent))
    assert stored is not None
    assert (stored.provider, stored.event_id, stored.event_type) == (
        "stripe",
        event["id"],
        "customer.updated",
    )
    assert stored.payload["data"]["object"]["id"] == "cus_123"
    assert (await deliver(shop, event)).json()["duplicate"] is True


async def test_a_declined_card_then_a_successful_retry(
    shop: Client,
    fake_stripe: FakeStripe,
    make_course: MakeCourse,
    learner: Account,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    course = await make_course("Bread", price_cents=2500)
    session_id = await _start(shop, learner, course)
    intent = fake_stripe.decline_checkout_payment(session_id)
    response = await deliver(shop, fake_stripe.event("payment_intent.payment_failed", intent))
    assert response.status_code == 200
    failed = await _payment(sessions, session_id)
    assert failed.status is PaymentStatus.FAILED
    assert failed.stripe_payment_intent_id == intent["id"]
    assert (
        await shop.put(f"/me/enrollments/{course.id}", headers=learner.headers)
    ).status_code == 403
    # The session is still open: clicking "buy" again returns it.
    again = await shop.post(f"/checkout/course/{course.id}", headers=learner.headers)
    assert again.json()["session_id"] == session_id

    completed = fake_stripe.complete_checkout(session_id)
    await deliver(shop, fake_stripe.event("checkout.session.completed", completed))
    # A late copy of the failure changes nothing now.
    await deliver(shop, fake_stripe.event("payment_intent.payment_failed", intent))
    assert (await _payment(sessions, session_id)).status is PaymentStatus.SUCCEEDED
    assert (
        await shop.put(f"/me/enrollments/{course.id}", headers=learner.headers)
    ).status_code == 200


async def test_an_expired_session_fails_its_payment(
    shop: Client,
    fake_stripe: FakeStripe,
    make_course: MakeCourse,
    learner: Account,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    course = await make_course("Bread", price_cents=2500)
    session_id = await _start(shop, learner, course)
    expired = fake_stripe.expire_checkout(session_id)
    await deliver(shop, fake_stripe.event("checkout.session.expired", expired))
    assert (await _payment(sessions, session_id)).status is PaymentStatus.FAILED


async def test_a_completed_session_whose_payment_row_was_lost_is_recorded_from_metadata(
    shop: Client,
    fake_stripe: FakeStripe,
    make_course: MakeCourse,
    learner: Account,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    course = await make_course("Bread", price_cents=2500)
    session_id = await _start(shop, learner, course)
    lost = await _payment(sessions, session_id)
    async with sessions() as session, session.begin():
        await session.execute(delete(Payment))
    completed = fake_stripe.complete_checkout(session_id)
    await deliver(shop, fake_stripe.event("checkout.session.completed", completed))
    payment = await _payment(sessions, session_id)
    assert payment.id == lost.id  # the id travels in the session's metadata
    assert (payment.user_id, payment.course_id, payment.kind) == (
        learner.user.id,
        course.id,
        PaymentKind.COURSE,
    )
    assert (payment.status, payment.amount_cents) == (PaymentStatus.SUCCEEDED, 2500)


async def _subscription(
    sessions: async_sessionmaker[AsyncSession], subscription_id: str
) -> Subscription:
    async with sessions() as session:
        found = await session.scalar(
            select(Subscription).where(Subscription.stripe_subscription_id == subscription_id)
        )
    assert found is not None
    return found


async def test_subscription_events_out_of_order_end_in_stripes_state(
    shop: Client,
    fake_stripe: FakeStripe,
    learner: Account,
    subscribe: Subscribe,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    subscribed = await subscribe(learner)
    sub_id = subscribed.subscription_id
    assert await _role(sessions, learner.user.id) is Role.PREMIUM
    stored = await _subscription(sessions, sub_id)
    assert stored.user_id == learner.user.id
    assert (stored.status, stored.interval, stored.stripe_price_id) == (
        "active",
        "month",
        "price_premium_monthly",
    )
    assert stored.current_period_end is not None

    t = fake_stripe.now()
    past_due = fake_stripe.change_subscription(sub_id, status="past_due")
    recovered = fake_stripe.change_subscription(sub_id, status="active")
    canceled = fake_stripe.change_subscription(sub_id, status="canceled")
    # Stripe created them in this order, but they arrive in reverse.
    for event in (
        fake_stripe.event("customer.subscription.deleted", canceled, created=t + 30),
        fake_stripe.event("customer.subscription.updated", recovered, created=t + 20),
        fake_stripe.event("customer.subscription.updated", past_due, created=t + 10),
    ):
        assert (await deliver(shop, event)).status_code == 200
    stored = await _subscription(sessions, sub_id)
    assert stored.status == "canceled"
    assert stored.canceled_at is not None
    assert await _role(sessions, learner.user.id) is Role.FREE

    # A canceled subscription never comes back, even from an event stamped the same second.
    same_second = fake_stripe.event("customer.subscription.updated", recovered, created=t + 30)
    await deliver(shop, same_second)
    assert (await _subscription(sessions, sub_id)).status == "canceled"
    assert await _role(sessions, learner.user.id) is Role.FREE
    async with sessions() as session:
        changes = list(
            await session.scalars(
                select(AuditLog.details)
                .where(AuditLog.action == "user.role_change")
                .order_by(AuditLog.created_at)
            )
        )
    assert [(c["from"], c["to"]) for c in changes] == [("FREE", "PREMIUM"), ("PREMIUM", "FREE")]


async def test_a_newer_state_wins_over_an_older_event(
    shop: Client,
    fake_stripe: FakeStripe,
    learner: Account,
    subscribe: Subscribe,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    subscribed = await subscribe(learner)
    sub_id = subscribed.subscription_id
    t = fake_stripe.now()
    active = dict(fake_stripe.subscriptions[sub_id])
    unpaid = fake_stripe.change_subscription(sub_id, status="past_due")
    await deliver(shop, fake_stripe.event("customer.subscription.updated", unpaid, created=t + 20))
    await deliver(shop, fake_stripe.event("customer.subscription.updated", active, created=t + 5))
    assert (await _subscription(sessions, sub_id)).status == "past_due"
    assert await _role(sessions, learner.user.id) is Role.FREE  # past_due is not premium


async def test_deleted_before_created_stays_canceled(
    shop: Client,
    fake_stripe: FakeStripe,
    learner: Account,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    started = await shop.post(
        "/checkout/subscription", json={"interval": "month"}, headers=learner.headers
    )
    completed = fake_stripe.complete_checkout(started.json()["session_id"])
    sub_id = completed["subscription"]
    t = fake_stripe.now()
    created = dict(fake_stripe.subscriptions[sub_id])
    deleted = fake_stripe.change_subscription(sub_id, status="canceled")
    await deliver(shop, fake_stripe.event("customer.subscription.deleted", deleted, created=t + 9))
    await deliver(shop, fake_stripe.event("checkout.session.completed", completed, created=t))
    await deliver(shop, fake_stripe.event("customer.subscription.created", created, created=t))
    assert (await _subscription(sessions, sub_id)).status == "canceled"
    assert await _role(sessions, learner.user.id) is Role.FREE


async def test_a_subscription_seen_before_its_user_is_linked_by_the_checkout(
    shop: Client,
    fake_stripe: FakeStripe,
    learner: Account,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    started = await shop.post(
        "/checkout/subscription", json={"interval": "month"}, headers=learner.headers
    )
    completed = fake_stripe.complete_checkout(started.json()["session_id"])
    sub_id = completed["subscription"]
    # Neither the metadata nor the customer points at a user of ours.
    orphan = fake_stripe.change_subscription(sub_id, metadata={}, customer="cus_unknown")
    await deliver(shop, fake_stripe.event("customer.subscription.created", orphan))
    assert (await _subscription(sessions, sub_id)).user_id is None
    assert await _role(sessions, learner.user.id) is Role.FREE

    await deliver(shop, fake_stripe.event("checkout.session.completed", completed))
    assert (await _subscription(sessions, sub_id)).user_id == learner.user.id
    assert await _role(sessions, learner.user.id) is Role.PREMIUM


async def test_an_administrator_is_never_demoted(
    shop: Client,
    fake_stripe: FakeStripe,
    make_account: MakeAccount,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    admin = await make_account(Role.ADMIN)
    # Administrators cannot subscribe through the API; Stripe may still hold one for them.
    async with sessions() as session, session.begin():
        user = await session.get(User, admin.user.id)
        assert user is not None
        user.stripe_customer_id = "cus_admin"
    subscription = {
        "id": "sub_admin",
        "object": "subscription",
        "customer": "cus_admin",
        "status": "active",
        "cancel_at_period_end": False,
        "canceled_at": None,
        "metadata": {},
        "items": {"object": "list", "data": []},
    }
    await deliver(shop, fake_stripe.event("customer.subscription.created", subscription))
    assert (await _subscription(sessions, "sub_admin")).user_id == admin.user.id
    canceled = {**subscription, "status": "canceled"}
    await deliver(shop, fake_stripe.event("customer.subscription.deleted", canceled))
    assert await _role(sessions, admin.user.id) is Role.ADMIN


async def test_invoices_are_recorded_once(
    shop: Client,
    fake_stripe: FakeStripe,
    learner: Account,
    subscribe: Subscribe,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    subscribed = await subscribe(learner)
    invoice = fake_stripe.invoices[subscribed.invoice_id]
    # Stripe retries deliveries with the same event id, and may send a second event for it.
    await deliver(shop, fake_stripe.event("invoice.paid", invoice))
    renewal = {
        **invoice,
        "id": "in_renewal",
        "billing_reason": "subscription_cycle",
        "amount_paid": 0,
        "status": "open",
        "payments": {
            "object": "list",
            "data": [{"payment": {"type": "payment_intent", "payment_intent": "pi_renewal"}}],
        },
    }
    await deliver(shop, fake_stripe.event("invoice.payment_failed", renewal))
    await deliver(shop, fake_stripe.event("invoice.payment_failed", renewal))
    async with sessions() as session:
        payments = list(
            await session.scalars(
                select(Payment)
                .where(Payment.kind == PaymentKind.SUBSCRIPTION)
                .order_by(Payment.created_at)
            )
        )
    assert [(p.stripe_invoice_id, p.status, p.amount_cents) for p in payments] == [
        (subscribed.invoice_id, PaymentStatus.SUCCEEDED, 999),
        ("in_renewal", PaymentStatus.FAILED, 999),
    ]
    assert all(p.user_id == learner.user.id for p in payments)
    assert payments[0].stripe_payment_intent_id is not None

    # The retried renewal succeeds: the same row becomes SUCCEEDED.
    paid = {**renewal, "amount_paid": 999, "status": "paid"}
    await deliver(shop, fake_stripe.event("invoice.paid", paid))
    async with sessions() as session:
        statuses = list(
            await session.scalars(
                select(Payment.status).where(Payment.stripe_invoice_id == "in_renewal")
            )
        )
    assert statuses == [PaymentStatus.SUCCEEDED]
    # An invoice of nothing (a trial) is not a payment.
    trial = {**invoice, "id": "in_trial", "amount_paid": 0, "amount_due": 0}
    await deliver(shop, fake_stripe.event("invoice.paid", trial))
    assert await _count(sessions, Payment) == 2
