"""The one entitlement function, for every kind of user and course, and the doors that ask it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_domain.commerce.entitlements import may_open_course
from momentum_domain.commerce.models import Payment, PaymentKind, PaymentStatus, Subscription
from momentum_domain.users.models import Role, User
from tests.fixtures.app import MakeAccount, MakeCourse
from tests.fixtures.commerce import Client, Subscribe
from tests.fixtures.schedule import open_every_day

SUCCEEDED = PaymentStatus.SUCCEEDED


@dataclass(frozen=True)
class Case:
    name: str
    role: Role
    bought: str | None = None  # which course, by title
    payment: PaymentStatus = SUCCEEDED
    subscription: str | None = None  # Stripe status
    # May open: free, paid, premium, premium and sold.
    expected: tuple[bool, bool, bool, bool] = (True, False, False, False)


CASES = [
    Case("free user", Role.FREE),
    Case("bought the paid course", Role.FREE, "Paid", expected=(True, True, False, False)),
    Case("bought a premium course", Role.FREE, "Sold", expected=(True, False, False, True)),
    Case(
        "partly refunded",
        Role.FREE,
        "Paid",
        PaymentStatus.PARTIALLY_REFUNDED,
        expected=(True, True, False, False),
    ),
    Case("fully refunded", Role.FREE, "Paid", PaymentStatus.REFUNDED),
    Case("checkout still open", Role.FREE, "Paid", PaymentStatus.PENDING),
    Case("card declined", Role.FREE, "Paid", PaymentStatus.FAILED),
    Case("subscriber", Role.PREMIUM, subscription="active", expected=(True,) * 4),
    # The subscription decides even before the role caught up.
    Case("trialing", Role.FREE, subscription="trialing", expected=(True,) * 4),
    Case("past due", Role.FREE, subscription="past_due"),
    Case("canceled", Role.FREE, subscription="canceled"),
    Case("premium by role", Role.PREMIUM, expected=(True,) * 4),
    Case("administrator", Role.ADMIN, expected=(True,) * 4),
]


async def test_who_may_open_which_course(
    make_course: MakeCourse, sessions: async_sessionmaker[AsyncSession]
) -> None:
    courses = {
        "Free": await make_course("Free"),
        "Paid": await make_course("Paid", price_cents=1500),
        "Premium": await make_course("Premium", is_premium=True),
        "Sold": await make_course("Sold", is_premium=True, price_cents=1500),
    }
    refunded = {PaymentStatus.REFUNDED: 1500, PaymentStatus.PARTIALLY_REFUNDED: 500}
    for case in CASES:
        async with sessions() as session, session.begin():
            user = User(
                email=f"{uuid.uuid4().hex}@example.com",
                name=case.name,
                role=case.role,
                identity_provider="local",
                subject=uuid.uuid4().hex,
            )
            session.add(user)
            await session.flush()
            if case.bought is not None:
                session.add(
                    Payment(
                        user_id=user.id,
                        course_id=courses[case.bought].id,
                        kind=PaymentKind.COURSE,
                        status=case.payment,
                        amount_cents=1500,
                        currency="usd",
                        refunded_amount_cents=refunded.get(case.payment, 0),
                    )
                )
            if case.subscription is not None:
                session.add(
                    Subscription(
                        user_id=user.id,
                        stripe_subscription_id=f"sub_{uuid.uuid4().hex}",
                        stripe_customer_id=f"cus_{uuid.uuid4().hex}",
                        stripe_price_id="price_premium_monthly",
                        status=case.subscription,
                        interval="month",
                    )
                )
        async with sessions() as session:
            allowed = [
                await may_open_course(session, user_id=user.id, course=course)
                for course in courses.values()
            ]
        assert tuple(allowed) == case.expected, case.name


async def test_enrollment_and_lessons_ask_the_same_question(
    shop: Client,
    make_course: MakeCourse,
    make_account: MakeAccount,
    subscribe: Subscribe,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    paid = await make_course("Paid", price_cents=1500)
    premium = await make_course("Premium", is_premium=True)
    free_user = await make_account(Role.FREE)
    subscriber = await make_account(Role.FREE)
    for course in (paid, premium):
        denied = await shop.put(f"/me/enrollments/{course.id}", headers=free_user.headers)
        assert denied.status_code == 403
        locked = await shop.get(f"/courses/{course.slug}/lessons/2", headers=free_user.headers)
        assert locked.status_code == 403
        # Day 1 stays a free preview.
        preview = await shop.get(f"/courses/{course.slug}/lessons/1", headers=free_user.headers)
        assert preview.status_code == 200

    await subscribe(subscriber)
    for course in (paid, premium):
        enrolled = await shop.put(f"/me/enrollments/{course.id}", headers=subscriber.headers)
        assert enrolled.status_code == 200
        await open_every_day(sessions, subscriber.user.id, course.id)
        lesson = await shop.get(f"/courses/{course.slug}/lessons/2", headers=subscriber.headers)
        assert lesson.status_code == 200
