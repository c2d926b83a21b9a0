from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.catalog.models import Lesson
from momentum_domain.commerce.models import Payment, PaymentKind, PaymentStatus
from momentum_domain.learning.models import Progress
from momentum_domain.users.models import Role
from tests.fixtures.app import Account, MakeAccount, MakeCourse

Client = httpx.AsyncClient


async def test_learner_analytics(
    client: Client, make_course: MakeCourse, learner: Account, db: AsyncSession
) -> None:
    course = await make_course("Analytics course", days=7)
    lessons = list(
        await db.scalars(
            select(Lesson.id).where(Lesson.course_id == course.id).order_by(Lesson.day_number)
        )
    )
    now = datetime.now(UTC)
    for days_ago, lesson_id in zip([0, 1, 3, 4, 5, 6], lessons, strict=False):
        db.add(
            Progress(
                user_id=learner.user.id,
                lesson_id=lesson_id,
                course_id=course.id,
                completed=True,
                completed_at=now - timedelta(days=days_ago),
                time_spent_seconds=60,
            )
        )
    await db.commit()
    mine = (await client.get("/me/analytics", headers=learner.headers)).json()
    assert mine["total_time_seconds"] == 360
    assert mine["lessons_completed"] == 6
    assert mine["current_streak_days"] == 2
    assert mine["longest_streak_days"] == 4
    assert mine["time_by_course"][0]["title"] == "Analytics course"
    assert len(mine["last_30_days"]) == 30
    assert mine["last_30_days"][-1]["lessons_completed"] == 1


async def test_admin_analytics(
    client: Client,
    make_course: MakeCourse,
    make_account: MakeAccount,
    admin_account: Account,
    db: AsyncSession,
) -> None:
    course = await make_course("Paid analytics", price_cents=2000)
    buyers = [await make_account(Role.PREMIUM) for _ in range(3)]
    for buyer in buyers:
        await client.put(f"/me/enrollments/{course.id}", headers=buyer.headers)
        db.add(
            Payment(
                user_id=buyer.user.id,
                course_id=course.id,
                kind=PaymentKind.COURSE,
                status=PaymentStatus.SUCCEEDED,
                amount_cents=2000,
                currency="usd",
                stripe_checkout_session_id=f"cs_{uuid.uuid4().hex}",
            )
        )
    await db.commit()
    lessons = list(await db.scalars(select(Lesson.id).where(Lesson.course_id == course.id)))
    for lesson_id in lessons:
        await client.put(
            f"/me/progress/{lesson_id}", json={"completed": True}, headers=buyers[0].headers
        )

    report = (await client.get("/admin/analytics", headers=admin_account.headers)).json()
    assert report["enrollments"] == 3
    assert report["completions"] == 1
    assert report["completion_rate"] == round(1 / 3, 4)
    assert report["revenue_by_day"][0]["revenue_cents"] == 6000
    assert report["revenue_by_course"][0]["title"] == "Paid analytics"
    assert report["revenue_by_course"][0]["payments"] == 3
    today = datetime.now(UTC).date().isoformat()
    assert report["enrollments_by_day"] == [{"date": today, "count": 3}]

    assert (
        await client.get(
            "/admin/analytics?start=2026-05-01&end=2026-04-01", headers=admin_account.headers
        )
    ).status_code == 422
    assert (
        await client.get(
            "/admin/analytics?start=2020-01-01&end=2026-01-01", headers=admin_account.headers
        )
    ).status_code == 422
    assert (await client.get("/admin/analytics", headers=buyers[0].headers)).status_code == 403
