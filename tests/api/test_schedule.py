"""The daily schedule (learning.schedule): day N opens on the (N-1)th local calendar day after
the enrollment's, in the learner's time zone; missed days stay open, days ahead do not."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_domain.catalog.models import Lesson
from momentum_domain.config import get_settings
from momentum_domain.errors import Forbidden
from momentum_domain.learning.models import Enrollment
from momentum_domain.learning.schedule import days_open, opening_day
from momentum_domain.learning.service import Learner, learning
from momentum_domain.users.models import Role
from tests.fixtures.app import Account, MakeAccount, MakeCourse

Client = httpx.AsyncClient
# 10:00 UTC: 03:00 in Los Angeles (PDT since 8 March), 23:00 in Auckland (NZDT), 10 March 2026.
ENROLLED_AT = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


async def _enroll(
    client: Client, db: AsyncSession, account: Account, course_id: uuid.UUID, zone: str
) -> None:
    """Enroll a learner living in ``zone``, as if they had enrolled at ``ENROLLED_AT``."""
    changed = await client.patch("/me", json={"time_zone": zone}, headers=account.headers)
    assert changed.status_code == 200
    assert (await client.put(f"/me/enrollments/{course_id}", headers=account.headers)).is_success
    await db.execute(
        update(Enrollment)
        .where(Enrollment.user_id == account.user.id, Enrollment.course_id == course_id)
        .values(created_at=ENROLLED_AT)
    )
    await db.commit()


async def _opens(
    sessions: async_sessionmaker[AsyncSession],
    account: Account,
    course_id: uuid.UUID,
    day: int,
    now: datetime,
) -> str | None:
    """None when ``day`` is open at ``now``, else the local date it opens on."""
    learner = Learner(account.user.id, account.user.role)
    async with sessions() as session:
        try:
            await learning.open_lesson(session, learner, str(course_id), day, now)
        except Forbidden as refused:
            return str(refused.extra["opens_on"])
    return None


async def test_a_locked_day_says_when_it_opens(
    client: Client, make_course: MakeCourse, learner: Account, db: AsyncSession
) -> None:
    course = await make_course()
    await client.patch("/me", json={"time_zone": "Pacific/Auckland"}, headers=learner.headers)
    await client.put(f"/me/enrollments/{course.id}", headers=learner.headers)
    enrolled_at = await db.scalar(
        select(Enrollment.created_at).where(Enrollment.user_id == learner.user.id)
    )
    assert enrolled_at is not None
    enrolled_on = enrolled_at.astimezone(ZoneInfo("Pacific/Auckland")).date()

    lessons = f"/courses/{course.slug}/lessons"
    assert (await client.get(f"{lessons}/1", headers=learner.headers)).status_code == 200
    locked = await client.get(f"{lessons}/2", headers=learner.headers)
    assert locked.status_code == 403
    assert locked.headers["content-type"].startswith("application/problem+json")
    problem = locked.json()
    opens_on = (enrolled_on + timedelta(days=1)).isoformat()
    assert problem["opens_on"] == opens_on
    assert opens_on in problem["detail"]
    assert problem["time_zone"] == "Pacific/Auckland"
    assert problem["day"] == 2
    opens_at = datetime.fromisoformat(problem["opens_at"])
    assert opens_at.date().isoformat() == opens_on
    assert (opens_at.hour, opens_at.minute) == (0, 0)
    assert opens_at.utcoffset() in (timedelta(hours=12), timedelta(hours=13))


async def test_days_open_one_a_day_and_missed_days_stay_open(
    client: Client,
    make_course: MakeCourse,
    learner: Account,
    db: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    course = await make_course()
    await _enroll(client, db, learner, course.id, "America/Los_Angeles")
    # The enrollment day (03:00 local): day 1 only.
    assert await _opens(sessions, learner, course.id, 1, ENROLLED_AT) is None
    assert await _opens(sessions, learner, course.id, 2, ENROLLED_AT) == "2026-03-11"
    # 23:59 local on the same day: still locked.
    late = datetime(2026, 3, 11, 6, 59, tzinfo=UTC)
    assert await _opens(sessions, learner, course.id, 2, late) == "2026-03-11"
    # Local midnight (07:00 UTC): day 2 opens, day 3 may not be read ahead.
    midnight = datetime(2026, 3, 11, 7, 0, tzinfo=UTC)
    assert await _opens(sessions, learner, course.id, 2, midnight) is None
    assert await _opens(sessions, learner, course.id, 3, midnight) == "2026-03-12"
    # Four days later: days 2 to 6 are open (catching up), day 7 is not.
    later = datetime(2026, 3, 15, 20, 0, tzinfo=UTC)
    for day in range(1, 7):
        assert await _opens(sessions, learner, course.id, day, later) is None
    assert await _opens(sessions, learner, course.id, 7, later) == "2026-03-16"


async def test_the_same_instant_opens_different_days_in_different_zones(
    client: Client,
    make_course: MakeCourse,
    make_account: MakeAccount,
    db: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    course = await make_course()
    auckland, los_angeles = await make_account(), await make_account()
    await _enroll(client, db, auckland, course.id, "Pacific/Auckland")
    await _enroll(client, db, los_angeles, course.id, "America/Los_Angeles")
    # 11:30 UTC: 00:30 on 11 March in Auckland (enrolled at 23:00 the day before), 04:30 on
    # 10 March in Los Angeles (enrolled at 03:00 that day).
    now = datetime(2026, 3, 10, 11, 30, tzinfo=UTC)
    assert await _opens(sessions, auckland, course.id, 2, now) is None
    assert await _opens(sessions, auckland, course.id, 3, now) == "2026-03-12"
    assert await _opens(sessions, los_angeles, course.id, 2, now) == "2026-03-11"


async def test_admins_and_premium_members_when_the_setting_says(
    client: Client,
    make_course: MakeCourse,
    make_account: MakeAccount,
    db: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    course = await make_course()
    admin, member = await make_account(Role.ADMIN), await make_account(Role.PREMIUM)
    await _enroll(client, db, member, course.id, "UTC")
    assert await _opens(sessions, admin, course.id, 7, ENROLLED_AT) is None
    assert await _opens(sessions, member, course.id, 7, ENROLLED_AT) == "2026-03-16"
    monkeypatch.setattr(get_settings(), "schedule_premium_unlocks_all", True)
    assert await _opens(sessions, member, course.id, 7, ENROLLED_AT) is None


def test_day_one_opens_on_the_enrollment_day() -> None:
    zone = ZoneInfo("Europe/London")
    assert opening_day(ENROLLED_AT, 1, zone) == date(2026, 3, 10)
    assert days_open(ENROLLED_AT, ENROLLED_AT, zone) == 1
    # Across the change to summer time (29 March): still one day per calendar day.
    assert days_open(ENROLLED_AT, datetime(2026, 3, 30, 0, 30, tzinfo=UTC), zone) == 21


async def test_today_lists_the_lesson_to_read_in_each_course(
    client: Client,
    make_course: MakeCourse,
    learner: Account,
    db: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    course = await make_course("Daily Knots")
    await _enroll(client, db, learner, course.id, "America/Los_Angeles")
    lesson_ids = list(
        await db.scalars(
            select(Lesson.id).where(Lesson.course_id == course.id).order_by(Lesson.day_number)
        )
    )
    done = await client.put(
        f"/me/progress/{lesson_ids[0]}", json={"completed": True}, headers=learner.headers
    )
    assert done.status_code == 200

    # 12 March, 05:00 in Los Angeles: days 1-3 are open, day 1 is done, day 2 was missed.
    now = datetime(2026, 3, 12, 12, 0, tzinfo=UTC)
    async with sessions() as session:
        today = await learning.today(session, learner.user.id, now)
    assert (today.date, today.time_zone) == (date(2026, 3, 12), "America/Los_Angeles")
    [entry] = today.courses
    assert (entry.course.id, entry.course.slug) == (course.id, course.slug)
    assert entry.lesson is not None
    assert (entry.lesson.id, entry.lesson.day, entry.lesson.missed) == (lesson_ids[1], 2, True)
    assert (entry.days_done, entry.days_left, entry.days_open) == (1, 6, 3)
    assert entry.next_opens_on == date(2026, 3, 13)

    for lesson_id in lesson_ids[1:3]:
        await client.put(
            f"/me/progress/{lesson_id}", json={"completed": True}, headers=learner.headers
        )
    async with sessions() as session:
        [caught_up] = (await learning.today(session, learner.user.id, now)).courses
    assert caught_up.lesson is None  # every open day done: the next opens tomorrow
    assert (caught_up.days_done, caught_up.days_left) == (3, 4)
    assert caught_up.next_opens_on == date(2026, 3, 13)

    # Over HTTP, now: the enrollment is months old, every day is open, day 4 is next.
    response = await client.get("/me/today", headers=learner.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["time_zone"] == "America/Los_Angeles"
    assert body["current_streak_days"] == 1  # the three lessons were done today
    [course_today] = body["courses"]
    assert course_today["course"] == {
        "id": str(course.id),
        "slug": course.slug,
        "title": "Daily Knots",
    }
    assert course_today["lesson"]["day"] == 4
    assert course_today["lesson"]["missed"] is True
    assert (course_today["days_done"], course_today["days_left"]) == (3, 4)
    assert course_today["days_open"] == 7
    assert course_today["next_opens_on"] is None


async def test_a_self_paced_course_opens_every_day_at_once(
    client: Client,
    make_course: MakeCourse,
    learner: Account,
    admin_account: Account,
    db: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    course = await make_course()
    await _enroll(client, db, learner, course.id, "UTC")
    assert await _opens(sessions, learner, course.id, 7, ENROLLED_AT) == "2026-03-16"
    changed = await client.patch(
        f"/admin/courses/{course.id}", json={"pacing": "self_paced"}, headers=admin_account.headers
    )
    assert changed.status_code == 200
    assert changed.json()["pacing"] == "self_paced"
    assert await _opens(sessions, learner, course.id, 7, ENROLLED_AT) is None
    async with sessions() as session:
        [entry] = (await learning.today(session, learner.user.id, ENROLLED_AT)).courses
    assert (entry.days_open, entry.next_opens_on) == (7, None)
