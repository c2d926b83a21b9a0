"""Badges: rule-based, each awarded exactly once even when events race."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_domain.community.models import Badge, UserBadge
from momentum_domain.community.service import badges
from momentum_domain.learning.models import Progress
from tests.fixtures.app import Account, MakeCourse

Client = httpx.AsyncClient


async def _lessons(db: AsyncSession, course_id: uuid.UUID) -> list[uuid.UUID]:
    from momentum_domain.catalog.models import Lesson

    return list(
        await db.scalars(
            select(Lesson.id).where(Lesson.course_id == course_id).order_by(Lesson.day_number)
        )
    )


async def _earned(db: AsyncSession, account: Account) -> set[str]:
    return set(
        await db.scalars(
            select(Badge.code)
            .join(UserBadge, UserBadge.badge_id == Badge.id)
            .where(UserBadge.user_id == account.user.id)
        )
    )


async def test_completing_lessons_and_courses_and_reviewing_earn_badges(
    client: Client, make_course: MakeCourse, learner: Account, db: AsyncSession
) -> None:
    course = await make_course(days=7)
    await client.put(f"/me/enrollments/{course.id}", headers=learner.headers)
    lesson_ids = await _lessons(db, course.id)
    await client.put(
        f"/me/progress/{lesson_ids[0]}", json={"completed": True}, headers=learner.headers
    )
    assert await _earned(db, learner) == {"first-lesson"}
    for lesson_id in lesson_ids[1:]:
        await client.put(
            f"/me/progress/{lesson_id}", json={"completed": True}, headers=learner.headers
        )
    assert await _earned(db, learner) == {"first-lesson", "first-course"}
    await client.put(f"/me/reviews/{course.id}", json={"rating": 5}, headers=learner.headers)
    assert "first-review" in await _earned(db, learner)

    listing = (await client.get("/me/badges", headers=learner.headers)).json()
    by_code = {b["code"]: b for b in listing}
    assert by_code["first-course"]["earned_at"] is not None
    assert by_code["ten-lessons"]["earned_at"] is None
    assert (by_code["ten-lessons"]["current"], by_code["ten-lessons"]["threshold"]) == (7, 10)
    assert (by_code["three-courses"]["current"], by_code["three-courses"]["threshold"]) == (1, 3)


async def test_a_badge_is_awarded_once_when_awards_race(
    learner: Account,
    sessions: async_sessionmaker[AsyncSession],
    make_course: MakeCourse,
    db: AsyncSession,
) -> None:
    course = await make_course(days=7)
    lesson_id = (await _lessons(db, course.id))[0]
    db.add(
        Progress(user_id=learner.user.id, lesson_id=lesson_id, course_id=course.id, completed=True)
    )
    await db.commit()

    async def award() -> list[uuid.UUID]:
        async with sessions() as session, session.begin():
            return await badges.award(session, learner.user.id)

    results = await asyncio.gather(*(award() for _ in range(10)))
    assert sum(len(r) for r in results) == 1  # one winner...
    count = await db.scalar(select(func.count()).select_from(UserBadge))
    assert count == 1  # ...and one row


async def test_streak_badges(
    client: Client, make_course: MakeCourse, learner: Account, db: AsyncSession
) -> None:
    from datetime import UTC, datetime, timedelta

    course = await make_course(days=7)
    lesson_ids = await _lessons(db, course.id)
    now = datetime.now(UTC)
    for days_ago, lesson_id in zip([0, 1, 2], lesson_ids, strict=False):
        db.add(
            Progress(
                user_id=learner.user.id,
                lesson_id=lesson_id,
                course_id=course.id,
                completed=True,
                completed_at=now - timedelta(days=days_ago),
            )
        )
    await db.commit()
    async with AsyncSession(db.bind) as session, session.begin():
        await badges.award(session, learner.user.id)
    assert {"first-lesson", "streak-3"} <= await _earned(db, learner)
    assert "streak-7" not in await _earned(db, learner)
