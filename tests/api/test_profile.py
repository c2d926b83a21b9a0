"""The learner's profile (GET/PATCH /me), and the days it makes streaks count in."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.catalog.models import Lesson
from momentum_domain.learning.models import Progress
from momentum_domain.models import AuditLog, User
from tests.fixtures.app import Account, MakeCourse

Client = httpx.AsyncClient

DEFAULTS = {
    "time_zone": "UTC",
    "reminder_hour": 8,
    "locale": "en",
    "email_preferences": {"lesson_reminders": True, "product_updates": False},
}


async def _stored(db: AsyncSession, account: Account) -> User:
    db.expire_all()
    user = await db.get(User, account.user.id)
    assert user is not None
    return user


async def test_profile_defaults(client: Client, learner: Account) -> None:
    me = await client.get("/me", headers=learner.headers)
    assert me.status_code == 200
    body = me.json()
    assert body["id"] == str(learner.user.id)
    assert body["email"] == learner.user.email
    assert {key: body[key] for key in DEFAULTS} == DEFAULTS


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ({"name": "Ada Lovelace"}, {"name": "Ada Lovelace"}),
        ({"time_zone": "Pacific/Auckland"}, {"time_zone": "Pacific/Auckland"}),
        ({"reminder_hour": 0}, {"reminder_hour": 0}),
        ({"reminder_hour": 23}, {"reminder_hour": 23}),
        ({"locale": "pt-BR"}, {"locale": "pt-BR"}),
        (
            {"email_preferences": {"lesson_reminders": False}},
            {"email_preferences": {"lesson_reminders": False, "product_updates": False}},
        ),
        (
            {"email_preferences": {"product_updates": True}},
            {"email_preferences": {"lesson_reminders": True, "product_updates": True}},
        ),
    ],
)
async def test_patch_changes_only_what_it_sends(
    client: Client, learner: Account, db: AsyncSession, sent: dict[str, Any], expected: dict
) -> None:
    before = (await client.get("/me", headers=learner.headers)).json()
    response = await client.patch("/me", json=sent, headers=learner.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {**before, **expected}
    assert (await client.get("/me", headers=learner.headers)).json() == {**before, **expected}
    actions = list(
        await db.scalars(select(AuditLog.action).where(AuditLog.actor_id == learner.user.id))
    )
    assert actions.count("user.profile_update") == 1


async def test_patches_accumulate_in_the_stored_document(
    client: Client, learner: Account, db: AsyncSession
) -> None:
    for sent in ({"time_zone": "America/Los_Angeles"}, {"reminder_hour": 19}, {"locale": "en-GB"}):
        assert (await client.patch("/me", json=sent, headers=learner.headers)).status_code == 200
    stored = (await _stored(db, learner)).preferences
    assert stored["time_zone"] == "America/Los_Angeles"
    assert stored["reminder_hour"] == 19
    assert stored["locale"] == "en-GB"


async def test_an_unknown_time_zone_is_422_naming_it_and_nothing_changes(
    client: Client, learner: Account, db: AsyncSession
) -> None:
    response = await client.patch(
        "/me", json={"time_zone": "Mars/Olympus_Mons", "locale": "fr"}, headers=learner.headers
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["time_zone"]
    stored = await _stored(db, learner)
    assert stored.preferences == {}
    me = (await client.get("/me", headers=learner.headers)).json()
    assert me["locale"] == "en"


@pytest.mark.parametrize(
    ("sent", "field"),
    [
        ({"reminder_hour": 24}, "reminder_hour"),
        ({"reminder_hour": -1}, "reminder_hour"),
        ({"locale": "english"}, "locale"),
        ({"locale": "EN-gb"}, "locale"),
        ({"name": ""}, "name"),
        ({"email_preferences": {"product_updates": "yes"}}, "email_preferences.product_updates"),
    ],
)
async def test_a_value_the_document_refuses_is_400_naming_the_field(
    client: Client, learner: Account, db: AsyncSession, sent: dict[str, Any], field: str
) -> None:
    """Like every body: what breaks the OpenAPI document is a 400 naming the field."""
    response = await client.patch("/me", json=sent, headers=learner.headers)
    assert response.status_code == 400, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert (await _stored(db, learner)).preferences == {}


async def test_an_unknown_field_is_refused(
    client: Client, learner: Account, db: AsyncSession
) -> None:
    response = await client.patch("/me", json={"role": "ADMIN"}, headers=learner.headers)
    assert response.status_code == 400, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["role"]
    assert (await _stored(db, learner)).role == learner.user.role


async def test_a_stored_document_with_bad_keys_reads_as_defaults(
    client: Client, learner: Account, db: AsyncSession
) -> None:
    user = await _stored(db, learner)
    user.preferences = {"time_zone": "Nowhere/City", "reminder_hour": 99, "locale": "fr"}
    await db.commit()
    body = (await client.get("/me", headers=learner.headers)).json()
    assert {key: body[key] for key in DEFAULTS} == {**DEFAULTS, "locale": "fr"}


async def test_patch_needs_a_token(client: Client) -> None:
    assert (await client.patch("/me", json={"locale": "fr"})).status_code == 401


async def test_streaks_count_days_in_the_learners_time_zone(
    client: Client, make_course: MakeCourse, learner: Account, db: AsyncSession
) -> None:
    """Two lessons done on consecutive Auckland days (yesterday and the day before, evening
    and early morning) fall on one UTC day: a 2-day streak in Auckland, not in UTC."""
    course = await make_course(days=7)
    await client.put(f"/me/enrollments/{course.id}", headers=learner.headers)
    lessons = list(
        await db.scalars(
            select(Lesson.id).where(Lesson.course_id == course.id).order_by(Lesson.day_number)
        )
    )
    auckland = ZoneInfo("Pacific/Auckland")
    yesterday = datetime.now(UTC).astimezone(auckland).date() - timedelta(days=1)
    done_at = [
        datetime.combine(yesterday - timedelta(days=1), time(20), auckland),
        datetime.combine(yesterday, time(1), auckland),
    ]
    assert done_at[0].astimezone(UTC).date() == done_at[1].astimezone(UTC).date()
    for lesson_id, when in zip(lessons, done_at, strict=False):
        db.add(
            Progress(
                user_id=learner.user.id,
                lesson_id=lesson_id,
                course_id=course.id,
                completed=True,
                completed_at=when,
            )
        )
    await db.commit()

    async def streaks() -> tuple[int, int, int]:
        dashboard = (await client.get("/me/dashboard", headers=learner.headers)).json()
        analytics = (await client.get("/me/analytics", headers=learner.headers)).json()
        return (
            dashboard["current_streak_days"],
            analytics["current_streak_days"],
            analytics["longest_streak_days"],
        )

    in_utc = await streaks()
    assert in_utc[0] < 2
    assert in_utc[2] == 1  # one UTC day
    patched = await client.patch(
        "/me", json={"time_zone": "Pacific/Auckland"}, headers=learner.headers
    )
    assert patched.status_code == 200
    assert await streaks() == (2, 2, 2)
