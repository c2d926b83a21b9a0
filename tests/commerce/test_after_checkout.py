"""After checkout, through the HTTP API and the fake Stripe: a purchase enrolls its buyer (once,
whatever Stripe redelivers), the success page reads the checkout's outcome from our database,
and the plans say what can be bought and for how much."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_dev.fakes.stripe import FakeStripe
from momentum_domain.catalog.models import CourseStatus
from momentum_domain.config import Settings
from momentum_domain.learning.models import Enrollment
from momentum_domain.users.models import Role
from tests.fixtures.app import MakeAccount, MakeCourse
from tests.fixtures.commerce import Client, deliver


async def _enrollments(sessions: async_sessionmaker[AsyncSession], user_id: object) -> int:
    async with sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(Enrollment).where(Enrollment.user_id == user_id)
        )
    return int(count or 0)


async def test_paying_enrolls_and_the_success_page_sees_it(
    shop: Client,
    fake_stripe: FakeStripe,
    make_course: MakeCourse,
    make_account: MakeAccount,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    course = await make_course("Sourdough basics", days=7, price_cents=1900)
    buyer = await make_account(Role.FREE)
    started = await shop.post(f"/checkout/course/{course.id}", headers=buyer.headers)
    assert started.status_code == 200, started.text
    session_id = started.json()["session_id"]
    status_url = f"/checkout/sessions/{session_id}"

    # Before Stripe's event: pending, not enrolled.
    before = await shop.get(status_url, headers=buyer.headers)
    assert before.status_code == 200, before.text
    assert before.json() == {
        "session_id": session_id,
        "status": "PENDING",
        "amount_cents": 1900,
        "currency": "usd",
        "course": {"id": str(course.id), "slug": course.slug, "title": "Sourdough basics"},
        "enrolled": False,
        "can_open": False,
    }

    # The learner pays; Stripe's event enrolls them, and a redelivery or a second event
    # changes nothing.
    completed = fake_stripe.complete_checkout(session_id)
    event = fake_stripe.event("checkout.session.completed", completed)
    assert (await deliver(shop, event)).json() == {"received": True, "duplicate": False}
    assert (await deliver(shop, event)).json() == {"received": True, "duplicate": True}
    again = fake_stripe.event("checkout.session.async_payment_succeeded", completed)
    assert (await deliver(shop, again)).status_code == 200
    assert await _enrollments(sessions, buyer.user.id) == 1

    after = (await shop.get(status_url, headers=buyer.headers)).json()
    assert (after["status"], after["enrolled"], after["can_open"]) == ("SUCCEEDED", True, True)
    [enrollment] = (await shop.get("/me/enrollments", headers=buyer.headers)).json()
    assert enrollment["course_id"] == str(course.id)
    lesson = await shop.get(f"/courses/{course.slug}/lessons/1", headers=buyer.headers)
    assert lesson.status_code == 200
    # Enrolling by hand afterwards finds the same enrollment.
    assert (
        await shop.put(f"/me/enrollments/{course.id}", headers=buyer.headers)
    ).status_code == 200
    assert await _enrollments(sessions, buyer.user.id) == 1


async def test_an_expired_checkout_is_failed(
    shop: Client, fake_stripe: FakeStripe, make_course: MakeCourse, make_account: MakeAccount
) -> None:
    course = await make_course("Knife skills", days=7, price_cents=900)
    buyer = await make_account(Role.FREE)
    session_id = (await shop.post(f"/checkout/course/{course.id}", headers=buyer.headers)).json()[
        "session_id"
    ]
    expired = fake_stripe.expire_checkout(session_id)
    assert (await deliver(shop, fake_stripe.event("checkout.session.expired", expired))).is_success
    outcome = (await shop.get(f"/checkout/sessions/{session_id}", headers=buyer.headers)).json()
    assert (outcome["status"], outcome["enrolled"], outcome["can_open"]) == ("FAILED", False, False)


async def test_someone_elses_checkout_is_not_found(
    shop: Client, make_course: MakeCourse, make_account: MakeAccount
) -> None:
    course = await make_course("Latte art", days=7, price_cents=1500)
    buyer, other = await make_account(Role.FREE), await make_account(Role.FREE)
    session_id = (await shop.post(f"/checkout/course/{course.id}", headers=buyer.headers)).json()[
        "session_id"
    ]
    url = f"/checkout/sessions/{session_id}"
    assert (await shop.get(url, headers=other.headers)).status_code == 404
    assert (
        await shop.get("/checkout/sessions/cs_test_nothing", headers=buyer.headers)
    ).status_code == 404
    assert (await shop.get(url)).status_code == 401


async def test_plans_list_premium_and_course_prices(
    shop: Client, commerce_settings: Settings, make_course: MakeCourse
) -> None:
    await make_course("Cheap course", days=7, price_cents=500)
    await make_course("Dear course", days=21, price_cents=99_00)
    await make_course("Free course", days=7)
    await make_course("Unpublished course", days=7, price_cents=1, status=CourseStatus.DRAFT)

    response = await shop.get("/plans")  # public: no token
    assert response.status_code == 200, response.text
    plans = response.json()
    assert plans["premium"] == [
        {
            "interval": "month",
            "amount_cents": commerce_settings.premium_monthly_cents,
            "currency": commerce_settings.premium_currency,
        },
        {
            "interval": "year",
            "amount_cents": commerce_settings.premium_yearly_cents,
            "currency": commerce_settings.premium_currency,
        },
    ]
    [usd] = [prices for prices in plans["courses"] if prices["currency"] == "usd"]
    assert usd["count"] >= 2
    assert usd["min_cents"] <= 500
    assert usd["max_cents"] >= 99_00
    assert usd["min_cents"] > 1  # the draft (no other test prices a course at 1 cent)
