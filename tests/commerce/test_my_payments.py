"""A learner's payments and subscription, cancelling at period end, and the admin's list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from momentum_dev.fakes.stripe import FakeStripe
from tests.fixtures.app import Account, MakeAccount, MakeCourse
from tests.fixtures.commerce import Buy, Client, Subscribe, deliver


async def test_cancel_at_period_end_keeps_premium_until_stripe_ends_it(
    shop: Client,
    fake_stripe: FakeStripe,
    make_course: MakeCourse,
    learner: Account,
    subscribe: Subscribe,
) -> None:
    assert (await shop.get("/me/subscription", headers=learner.headers)).status_code == 404
    assert (await shop.post("/me/subscription/cancel", headers=learner.headers)).status_code == 404

    subscribed = await subscribe(learner)
    mine = await shop.get("/me/subscription", headers=learner.headers)
    assert mine.status_code == 200
    body = mine.json()
    assert (body["status"], body["is_active"], body["interval"]) == ("active", True, "month")
    assert body["cancel_at_period_end"] is False
    period_end = fake_stripe.subscriptions[subscribed.subscription_id]["items"]["data"][0][
        "current_period_end"
    ]
    assert datetime.fromisoformat(body["current_period_end"]).timestamp() == period_end
    assert (await shop.get("/me", headers=learner.headers)).json()["role"] == "PREMIUM"

    cancelled = await shop.post("/me/subscription/cancel", headers=learner.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["cancel_at_period_end"] is True
    assert cancelled.json()["status"] == "active"
    [call] = fake_stripe.requests_to("POST", "/v1/subscriptions/")
    assert call.path == f"/v1/subscriptions/{subscribed.subscription_id}"
    assert call.params == {"cancel_at_period_end": "true"}
    assert call.idempotency_key is not None
    assert call.idempotency_key.startswith(f"subscription-cancel:{subscribed.subscription_id}:")
    # Repeating it changes nothing and does not call Stripe again.
    repeated = await shop.post("/me/subscription/cancel", headers=learner.headers)
    assert repeated.json()["cancel_at_period_end"] is True
    assert len(fake_stripe.requests_to("POST", "/v1/subscriptions/")) == 1
    # Stripe's own update event for the change agrees with what is stored.
    updated = fake_stripe.subscriptions[subscribed.subscription_id]
    await deliver(shop, fake_stripe.event("customer.subscription.updated", updated))
    assert (await shop.get("/me/subscription", headers=learner.headers)).json()[
        "cancel_at_period_end"
    ] is True
    premium = await make_course("Premium", is_premium=True)
    assert (
        await shop.put(f"/me/enrollments/{premium.id}", headers=learner.headers)
    ).status_code == 200

    # The period ends: Stripe deletes the subscription.
    ended = fake_stripe.change_subscription(subscribed.subscription_id, status="canceled")
    await deliver(
        shop,
        fake_stripe.event("customer.subscription.deleted", ended, created=fake_stripe.now() + 60),
    )
    final = (await shop.get("/me/subscription", headers=learner.headers)).json()
    assert (final["status"], final["is_active"]) == ("canceled", False)
    assert final["canceled_at"] is not None
    assert (await shop.get("/me", headers=learner.headers)).json()["role"] == "FREE"
    other = await make_course("Another premium", is_premium=True)
    assert (
        await shop.put(f"/me/enrollments/{other.id}", headers=learner.headers)
    ).status_code == 403
    assert (await shop.post("/me/subscription/cancel", headers=learner.headers)).status_code == 404


async def test_my_payments_list_my_purchases_and_invoices_only(
    shop: Client,
    fake_stripe: FakeStripe,
    make_course: MakeCourse,
    make_account: MakeAccount,
    learner: Account,
    buy: Buy,
    subscribe: Subscribe,
) -> None:
    bread = await make_course("Bread", price_cents=1900)
    pasta = await make_course("Pasta", price_cents=1200)
    await buy(learner, bread)
    await subscribe(learner)
    # An open checkout is not a payment yet.
    await shop.post(f"/checkout/course/{pasta.id}", headers=learner.headers)
    someone_else = await make_account()
    await buy(someone_else, pasta)

    response = await shop.get("/me/payments", headers=learner.headers)
    assert response.status_code == 200
    page = response.json()
    assert page["total"] == 2
    assert [
        (p["kind"], p["status"], p["amount_cents"], p["course_title"]) for p in page["items"]
    ] == [
        ("SUBSCRIPTION", "SUCCEEDED", 999, None),
        ("COURSE", "SUCCEEDED", 1900, "Bread"),
    ]
    assert "refund_reason" not in page["items"][0]
    second_page = await shop.get("/me/payments?limit=1&offset=1", headers=learner.headers)
    assert [p["course_title"] for p in second_page.json()["items"]] == ["Bread"]
    assert (await shop.get("/me/payments")).status_code == 401


async def test_admins_list_payments_with_filters(
    shop: Client,
    make_course: MakeCourse,
    make_account: MakeAccount,
    learner: Account,
    admin_account: Account,
    buy: Buy,
) -> None:
    bread = await make_course("Bread", price_cents=1900)
    pasta = await make_course("Pasta", price_cents=1200)
    other = await make_account()
    await buy(learner, bread)
    await buy(other, bread)
    await shop.post(f"/checkout/course/{pasta.id}", headers=learner.headers)  # PENDING

    async def listed(query: str = "") -> dict[str, Any]:
        response = await shop.get(f"/admin/payments{query}", headers=admin_account.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    assert (await listed())["total"] == 3
    assert (await listed("?status=PENDING"))["total"] == 1
    assert (await listed(f"?user_id={learner.user.id}"))["total"] == 2
    by_course = await listed(f"?course_id={bread.id}&status=SUCCEEDED&limit=1")
    assert by_course["total"] == 2
    assert len(by_course["items"]) == 1
    assert (await listed(f"?course_id={pasta.id}&user_id={other.user.id}"))["total"] == 0
    bad = await shop.get("/admin/payments?status=LOST", headers=admin_account.headers)
    assert bad.status_code == 400
    assert (await shop.get("/admin/payments", headers=learner.headers)).status_code == 403
