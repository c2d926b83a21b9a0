"""Checkout: the parameters and idempotency keys Stripe receives, one customer per user, the same
session for repeated clicks, a new one after expiry, and what cannot be bought."""

from __future__ import annotations

import asyncio
import time
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_api.app import create_app
from momentum_dev.fakes.stripe import FakeStripe
from momentum_domain.catalog.models import CourseStatus
from momentum_domain.commerce.models import Payment, PaymentKind, PaymentStatus
from momentum_domain.config import Settings
from momentum_domain.users.models import Role, User
from tests.fixtures.app import Account, MakeAccount, MakeCourse, serve
from tests.fixtures.commerce import FRONTEND, Buy, Client


async def test_course_checkout_sends_the_course_and_records_a_pending_payment(
    shop: Client,
    fake_stripe: FakeStripe,
    make_course: MakeCourse,
    learner: Account,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    course = await make_course("Sourdough basics", price_cents=1900, currency="eur")
    response = await shop.post(f"/checkout/course/{course.id}", headers=learner.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["session_id"].startswith("cs_")
    assert body["checkout_url"] == f"https://checkout.stripe.com/c/pay/{body['session_id']}"

    [customer_call] = fake_stripe.requests_to("POST", "/v1/customers")
    assert customer_call.params == {
        "email": learner.user.email,
        "name": learner.user.name,
        "metadata": {"user_id": str(learner.user.id)},
    }
    assert customer_call.idempotency_key is not None
    assert customer_call.idempotency_key.startswith(f"customer:{learner.user.id}:")
    customer_id = next(iter(fake_stripe.customers))

    [call] = fake_stripe.requests_to("POST", "/v1/checkout/sessions")
    async with sessions() as session:
        payment = await session.scalar(select(Payment))
        user = await session.get(User, learner.user.id)
    assert payment is not None
    assert user is not None
    assert user.stripe_customer_id == customer_id
    metadata = {
        "kind": "COURSE",
        "user_id": str(learner.user.id),
        "course_id": str(course.id),
        "payment_id": str(payment.id),
    }
    assert call.params == {
        "mode": "payment",
        "customer": customer_id,
        "client_reference_id": str(learner.user.id),
        "line_items": [
            {
                "quantity": "1",
                "price_data": {
                    "currency": "eur",
                    "unit_amount": "1900",
                    "product_data": {
                        "name": "Sourdough basics",
                        "metadata": {"course_id": str(course.id)},
                    },
                },
            }
        ],
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
        "success_url": f"{FRONTEND}/checkout/success?session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{FRONTEND}/courses/{course.slug}?checkout=cancelled",
    }
    assert call.idempotency_key is not None
    assert call.idempotency_key.startswith(
        f"checkout:course:{learner.user.id}:{course.id}:after:none:"
    )
    assert payment.status is PaymentStatus.PENDING
    assert payment.kind is PaymentKind.COURSE
    assert (payment.user_id, payment.course_id) == (learner.user.id, course.id)
    assert (payment.amount_cents, payment.currency) == (1900, "eur")
    assert payment.stripe_checkout_session_id == body["session_id"]


async def _payments(sessions: async_sessionmaker[AsyncSession]) -> list[Payment]:
    async with sessions() as session:
        return list(await session.scalars(select(Payment).order_by(Payment.created_at)))


async def test_repeated_clicks_return_the_open_session(
    shop: Client,
    fake_stripe: FakeStripe,
    make_course: MakeCourse,
    learner: Account,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    course = await make_course("Knife skills", price_cents=900)
    first = await shop.post(f"/checkout/course/{course.id}", headers=learner.headers)
    again = await shop.post(f"/checkout/course/{course.id}", headers=learner.headers)
    assert again.status_code == 200
    assert again.json() == first.json()
    # The second click asked Stripe about the open session instead of making another.
    assert len(fake_stripe.requests_to("POST", "/v1/checkout/sessions")) == 1
    assert len(fake_stripe.requests_to("GET", "/v1/checkout/sessions/")) == 1
    assert len(fake_stripe.requests_to("POST", "/v1/customers")) == 1
    assert len(await _payments(sessions)) == 1


async def test_concurrent_clicks_make_one_session_and_one_payment(
    shop: Client,
    fake_stripe: FakeStripe,
    make_course: MakeCourse,
    learner: Account,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    course = await make_course("Knife skills", price_cents=900)
    responses = await asyncio.gather(
        *(shop.post(f"/checkout/course/{course.id}", headers=learner.headers) for _ in range(6))
    )
    assert [r.status_code for r in responses] == [200] * 6
    assert len({r.json()["session_id"] for r in responses}) == 1
    # Every click that reached Stripe sent the same keys, so Stripe made one of each.
    keys = {r.idempotency_key for r in fake_stripe.requests_to("POST", "/v1/checkout/sessions")}
    assert len(keys) == 1
    assert len(fake_stripe.sessions) == 1
    assert len(fake_stripe.customers) == 1
    assert len(await _payments(sessions)) == 1
    async with sessions() as session:
        user = await session.get(User, learner.user.id)
    assert user is not None
    assert user.stripe_customer_id == next(iter(fake_stripe.customers))


async def test_an_expired_session_is_replaced_by_a_new_one(
    shop: Client,
    fake_stripe: FakeStripe,
    make_course: MakeCourse,
    learner: Account,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    course = await make_course("Knife skills", price_cents=900)
    first = (await shop.post(f"/checkout/course/{course.id}", headers=learner.headers)).json()
    fake_stripe.expire_checkout(first["session_id"])
    second = await shop.post(f"/checkout/course/{course.id}", headers=learner.headers)
    assert second.status_code == 200
    assert second.json()["session_id"] != first["session_id"]
    first_call, second_call = fake_stripe.requests_to("POST", "/v1/checkout/sessions")
    assert first_call.idempotency_key != second_call.idempotency_key
    assert second_call.idempotency_key is not None
    assert f":after:{first['session_id']}:" in second_call.idempotency_key
    assert (
        second_call.params["metadata"]["payment_id"] != first_call.params["metadata"]["payment_id"]
    )
    payments = await _payments(sessions)
    assert [(p.stripe_checkout_session_id, p.status) for p in payments] == [
        (first["session_id"], PaymentStatus.FAILED),
        (second.json()["session_id"], PaymentStatus.PENDING),
    ]
    # Still one customer.
    assert len(fake_stripe.requests_to("POST", "/v1/customers")) == 1


async def test_what_cannot_be_bought(
    shop: Client,
    fake_stripe: FakeStripe,
    make_course: MakeCourse,
    make_account: MakeAccount,
    learner: Account,
    buy: Buy,
) -> None:
    free = await make_course("Free course")
    paid = await make_course("Paid course", price_cents=1500)
    premium_only = await make_course("Premium course", is_premium=True)
    draft = await make_course("Draft course", price_cents=1500, status=CourseStatus.DRAFT)
    premium_member = await make_account(Role.PREMIUM)
    admin = await make_account(Role.ADMIN)

    for account, course in ((learner, free), (premium_member, paid), (admin, paid)):
        response = await shop.post(f"/checkout/course/{course.id}", headers=account.headers)
        assert response.status_code == 409
        assert response.json()["detail"] == "You can already open this course."
    not_sold = await shop.post(f"/checkout/course/{premium_only.id}", headers=learner.headers)
    assert not_sold.status_code == 409
    assert "premium subscription" in not_sold.json()["detail"]
    assert (
        await shop.post(f"/checkout/course/{draft.id}", headers=learner.headers)
    ).status_code == 404
    assert (await shop.post(f"/checkout/course/{paid.id}")).status_code == 401
    assert fake_stripe.requests == []

    await buy(learner, paid)
    bought_again = await shop.post(f"/checkout/course/{paid.id}", headers=learner.headers)
    assert bought_again.status_code == 409


async def test_a_completed_session_awaiting_its_webhook_is_not_sold_twice(
    shop: Client, fake_stripe: FakeStripe, make_course: MakeCourse, learner: Account
) -> None:
    course = await make_course("Knife skills", price_cents=900)
    started = (await shop.post(f"/checkout/course/{course.id}", headers=learner.headers)).json()
    fake_stripe.complete_checkout(started["session_id"])
    response = await shop.post(f"/checkout/course/{course.id}", headers=learner.headers)
    assert response.status_code == 409
    assert response.json()["session_id"] == started["session_id"]
    assert len(fake_stripe.sessions) == 1


async def test_subscription_checkout(
    shop: Client, fake_stripe: FakeStripe, make_account: MakeAccount, learner: Account
) -> None:
    response = await shop.post(
        "/checkout/subscription", json={"interval": "year"}, headers=learner.headers
    )
    assert response.status_code == 200, response.text
    session_id = response.json()["session_id"]
    [call] = fake_stripe.requests_to("POST", "/v1/checkout/sessions")
    customer_id = next(iter(fake_stripe.customers))
    user_id = str(learner.user.id)
    assert call.params == {
        "mode": "subscription",
        "customer": customer_id,
        "client_reference_id": user_id,
        "line_items": [{"price": "price_premium_yearly", "quantity": "1"}],
        "metadata": {
            "kind": "SUBSCRIPTION",
            "user_id": user_id,
            "interval": "year",
            "price_id": "price_premium_yearly",
        },
        "subscription_data": {"metadata": {"user_id": user_id}},
        "success_url": f"{FRONTEND}/premium/success?session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{FRONTEND}/premium?checkout=cancelled",
    }
    assert call.idempotency_key is not None
    assert call.idempotency_key.startswith(
        f"checkout:subscription:{user_id}:price_premium_yearly:after:none:"
    )
    assert fake_stripe.sessions[session_id]["amount_total"] == 9900

    # Clicking again returns the open session; after it expires, a new one.
    again = await shop.post(
        "/checkout/subscription", json={"interval": "year"}, headers=learner.headers
    )
    assert again.json()["session_id"] == session_id
    fake_stripe.expire_checkout(session_id)
    renewed = await shop.post(
        "/checkout/subscription", json={"interval": "year"}, headers=learner.headers
    )
    assert renewed.json()["session_id"] != session_id
    calls = fake_stripe.requests_to("POST", "/v1/checkout/sessions")
    assert len(calls) == 2
    assert calls[1].idempotency_key is not None
    assert f":after:{session_id}:" in calls[1].idempotency_key
    # Monthly is a different price.
    monthly = await shop.post(
        "/checkout/subscription", json={"interval": "month"}, headers=learner.headers
    )
    assert fake_stripe.sessions[monthly.json()["session_id"]]["amount_total"] == 999
    assert len(fake_stripe.requests_to("POST", "/v1/customers")) == 1

    for account in (await make_account(Role.PREMIUM), await make_account(Role.ADMIN)):
        taken = await shop.post(
            "/checkout/subscription", json={"interval": "month"}, headers=account.headers
        )
        assert taken.status_code == 409


async def test_subscription_checkout_rejects_bad_bodies(shop: Client, learner: Account) -> None:
    for body in ({"interval": "week"}, {}, {"interval": "month", "coupon": "FREE"}):
        response = await shop.post("/checkout/subscription", json=body, headers=learner.headers)
        assert response.status_code == 400
        assert response.json()["errors"]


async def test_stripe_errors_are_retried_with_the_same_key(
    shop: Client,
    fake_stripe: FakeStripe,
    make_course: MakeCourse,
    learner: Account,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    course = await make_course("Knife skills", price_cents=900)
    fake_stripe.fail_next(500, path="/v1/checkout/sessions")
    fake_stripe.fail_next(
        429,
        path="/v1/checkout/sessions",
        type="invalid_request_error",
        code="lock_timeout",
        headers={"Stripe-Should-Retry": "true"},
    )
    response = await shop.post(f"/checkout/course/{course.id}", headers=learner.headers)
    assert response.status_code == 200, response.text
    calls = fake_stripe.requests_to("POST", "/v1/checkout/sessions")
    assert [c.status for c in calls] == [500, 429, 200]
    assert len({c.idempotency_key for c in calls}) == 1
    assert len(await _payments(sessions)) == 1


async def test_stripe_down_is_a_503_and_records_nothing(
    shop: Client,
    fake_stripe: FakeStripe,
    make_course: MakeCourse,
    learner: Account,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    course = await make_course("Knife skills", price_cents=900)
    fake_stripe.fail_next(500, times=3, path="/v1/checkout/sessions")
    response = await shop.post(f"/checkout/course/{course.id}", headers=learner.headers)
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "try again" in response.json()["detail"]
    assert len(fake_stripe.requests_to("POST", "/v1/checkout/sessions")) == 3  # 1 + 2 retries
    assert await _payments(sessions) == []

    # A rate limit without Stripe's retry advice is not retried.
    fake_stripe.fail_next(
        429, path="/v1/checkout/sessions", type="invalid_request_error", code="rate_limit"
    )
    limited = await shop.post(f"/checkout/course/{course.id}", headers=learner.headers)
    assert limited.status_code == 503
    assert len(fake_stripe.requests_to("POST", "/v1/checkout/sessions")) == 4

    # Trying again later sends the same key: the failures were never stored by Stripe.
    retried = await shop.post(f"/checkout/course/{course.id}", headers=learner.headers)
    assert retried.status_code == 200
    calls = fake_stripe.requests_to("POST", "/v1/checkout/sessions")
    assert len({c.idempotency_key for c in calls}) == 1
    assert len(await _payments(sessions)) == 1


async def test_a_placeholder_stripe_key_is_named_at_once_and_never_sent(
    commerce_settings: Settings,
    make_course: MakeCourse,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # The embedded default key against Stripe itself (no stripe_api_base): no request could
    # succeed, so none is made and nothing tells the client to try again.
    unconfigured = commerce_settings.model_copy(
        update={
            "stripe_api_base": None,
            "stripe_api_key": Settings.model_construct().stripe_api_key,
        }
    )
    course = await make_course("Knife skills", price_cents=900)
    user_id = uuid.uuid4()
    async with sessions() as session, session.begin():
        user = User(
            id=user_id,
            email=f"unconfigured-{user_id.hex[:12]}@example.com",
            name="Learner",
            role=Role.FREE,
            identity_provider="local",
            subject=str(user_id),
            preferences={},
            demographics={},
        )
        session.add(user)
    async with serve(create_app(unconfigured)) as client:
        token = client.app.state.identity.issue_access_token(user)
        headers = {"Authorization": f"Bearer {token}"}
        started = time.monotonic()
        responses = [
            await client.post(f"/checkout/course/{course.id}", headers=headers),
            await client.post(
                "/checkout/subscription", json={"interval": "month"}, headers=headers
            ),
        ]
        elapsed = time.monotonic() - started
    for response in responses:
        assert response.status_code == 500, response.text
        assert "retry-after" not in response.headers
        body = response.json()
        assert body["type"].endswith("/payments-not-configured")
        assert body["detail"].startswith("Stripe is not configured: set MOMENTUM_STRIPE_API_KEY")
        assert "try again" not in body["detail"]
    assert elapsed < 1.0  # no connection attempted, nothing retried
    assert await _payments(sessions) == []
