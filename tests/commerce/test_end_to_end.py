"""The payments part of the issue's "done when", through the HTTP API only: a learner buys a
paid course (checkout, then Stripe's signed webhook), enrolls and reads a lesson; another
subscribes and opens a premium course; an administrator refunds the first purchase and the
course closes for the buyer."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_dev.fakes.stripe import FakeStripe
from momentum_domain.users.models import Role
from tests.fixtures.app import Account, MakeAccount, MakeCourse
from tests.fixtures.commerce import Client, deliver
from tests.fixtures.schedule import open_every_day


async def test_buy_subscribe_refund(
    shop: Client,
    fake_stripe: FakeStripe,
    make_course: MakeCourse,
    make_account: MakeAccount,
    admin_account: Account,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    paid = await make_course("Home espresso", days=7, price_cents=2900)
    premium = await make_course("Wine tasting", days=14, is_premium=True)
    buyer = await make_account(Role.FREE)
    member = await make_account(Role.FREE)

    # A learner buys the paid course.
    assert (await shop.put(f"/me/enrollments/{paid.id}", headers=buyer.headers)).status_code == 403
    checkout = await shop.post(f"/checkout/course/{paid.id}", headers=buyer.headers)
    assert checkout.status_code == 200
    session_id = checkout.json()["session_id"]
    completed = fake_stripe.complete_checkout(session_id)  # the learner pays at Stripe
    receipt = await deliver(shop, fake_stripe.event("checkout.session.completed", completed))
    assert receipt.json() == {"received": True, "duplicate": False}
    enrolled = await shop.put(f"/me/enrollments/{paid.id}", headers=buyer.headers)
    assert enrolled.status_code == 200
    await open_every_day(sessions, buyer.user.id, paid.id)
    lesson = await shop.get(f"/courses/{paid.slug}/lessons/3", headers=buyer.headers)
    assert lesson.status_code == 200
    assert lesson.json()["title"] == "Home espresso, day 3"
    [purchase] = (await shop.get("/me/payments", headers=buyer.headers)).json()["items"]
    assert (purchase["status"], purchase["amount_cents"]) == ("SUCCEEDED", 2900)
    # ...completes it, reviews it and earns badges.
    for day in range(1, 8):
        opened = (
            await shop.get(f"/courses/{paid.slug}/lessons/{day}", headers=buyer.headers)
        ).json()
        done = await shop.put(
            f"/me/progress/{opened['id']}", json={"completed": True}, headers=buyer.headers
        )
        assert done.status_code == 200
    assert done.json()["enrollment"]["status"] == "COMPLETED"
    review = await shop.put(
        f"/me/reviews/{paid.id}", json={"rating": 5, "comment": "Crema!"}, headers=buyer.headers
    )
    assert review.status_code == 200
    earned = {
        b["code"]
        for b in (await shop.get("/me/badges", headers=buyer.headers)).json()
        if b["earned_at"]
    }
    assert {"first-lesson", "first-course", "first-review"} <= earned

    # Another subscribes and opens a premium course.
    assert (
        await shop.put(f"/me/enrollments/{premium.id}", headers=member.headers)
    ).status_code == 403
    checkout = await shop.post(
        "/checkout/subscription", json={"interval": "month"}, headers=member.headers
    )
    completed = fake_stripe.complete_checkout(checkout.json()["session_id"])
    subscription = fake_stripe.subscriptions[completed["subscription"]]
    for event in (
        fake_stripe.event("customer.subscription.created", subscription),
        fake_stripe.event("checkout.session.completed", completed),
        fake_stripe.event("invoice.paid", fake_stripe.invoices[completed["invoice"]]),
    ):
        assert (await deliver(shop, event)).status_code == 200
    assert (await shop.get("/me", headers=member.headers)).json()["role"] == "PREMIUM"
    assert (
        await shop.put(f"/me/enrollments/{premium.id}", headers=member.headers)
    ).status_code == 200
    await open_every_day(sessions, member.user.id, premium.id)
    assert (
        await shop.get(f"/courses/{premium.slug}/lessons/2", headers=member.headers)
    ).status_code == 200
    assert (await shop.get("/me/subscription", headers=member.headers)).json()["is_active"]

    # An administrator refunds the first purchase: the course closes for the buyer.
    listed = await shop.get(
        f"/admin/payments?user_id={buyer.user.id}", headers=admin_account.headers
    )
    [payment] = listed.json()["items"]
    refund = await shop.post(
        f"/admin/payments/{payment['id']}/refund",
        json={"reason": "Bought by mistake"},
        headers=admin_account.headers,
    )
    assert refund.status_code == 200
    assert refund.json()["payment"]["status"] == "REFUNDED"
    # Stripe then reports the refund; it is not counted twice.
    charge = fake_stripe.charge_of(payment["stripe_payment_intent_id"])
    assert charge["amount_refunded"] == 2900
    await deliver(shop, fake_stripe.event("charge.refunded", charge))
    [after] = (await shop.get("/me/payments", headers=buyer.headers)).json()["items"]
    assert (after["status"], after["refunded_amount_cents"]) == ("REFUNDED", 2900)

    denied = await shop.put(f"/me/enrollments/{paid.id}", headers=buyer.headers)
    assert denied.status_code == 403
    closed = await shop.get(f"/courses/{paid.slug}/lessons/3", headers=buyer.headers)
    assert closed.status_code == 403
    assert closed.json()["detail"] == "Your access to this course has ended."
    # The learner may buy it again.
    again = await shop.post(f"/checkout/course/{paid.id}", headers=buyer.headers)
    assert again.status_code == 200
    assert again.json()["session_id"] != session_id
