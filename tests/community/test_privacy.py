"""Export everything; erase leaves no personal data, keeps the accounts, and ends every token."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.catalog.models import Lesson
from momentum_domain.commerce.models import Payment, PaymentKind, PaymentStatus
from momentum_domain.models import AuditLog, User
from tests.fixtures.app import Account, MakeCourse

Client = httpx.AsyncClient


async def _history(
    client: Client, make_course: MakeCourse, learner: Account, db: AsyncSession
) -> uuid.UUID:
    course = await make_course("Private matters", days=7)
    await client.put(f"/me/enrollments/{course.id}", headers=learner.headers)
    lesson_id = await db.scalar(
        select(Lesson.id).where(Lesson.course_id == course.id, Lesson.day_number == 1)
    )
    await client.put(
        f"/me/progress/{lesson_id}",
        json={"completed": True, "notes": "my secret note"},
        headers=learner.headers,
    )
    await client.put(
        f"/me/reviews/{course.id}",
        json={"rating": 4, "comment": "my honest opinion"},
        headers=learner.headers,
    )
    db.add(
        Payment(
            user_id=learner.user.id,
            course_id=course.id,
            kind=PaymentKind.COURSE,
            status=PaymentStatus.SUCCEEDED,
            amount_cents=1500,
            currency="usd",
            stripe_checkout_session_id="cs_private",
        )
    )
    await db.commit()
    await client.post(
        "/auth/sign-in", json={"email": learner.user.email, "password": "wrong password!"}
    )
    return course.id


async def test_export_contains_everything(
    client: Client, make_course: MakeCourse, learner: Account, db: AsyncSession
) -> None:
    await _history(client, make_course, learner, db)
    export = (await client.get("/me/export", headers=learner.headers)).json()
    assert export["profile"]["email"] == learner.user.email
    assert export["enrollments"][0]["course_title"] == "Private matters"
    assert export["progress"][0]["notes"] == "my secret note"
    assert export["reviews"][0]["comment"] == "my honest opinion"
    assert {b["code"] for b in export["badges"]} >= {"first-lesson", "first-review"}
    assert export["payments"][0]["amount_cents"] == 1500
    assert await db.scalar(select(AuditLog.id).where(AuditLog.action == "privacy.export"))


async def test_erasure_leaves_no_personal_data(
    client: Client, make_course: MakeCourse, learner: Account, db: AsyncSession
) -> None:
    course_id = await _history(client, make_course, learner, db)
    signed_in = (
        await client.post(
            "/auth/sign-in", json={"email": learner.user.email, "password": learner.password}
        )
    ).json()

    assert (await client.delete("/me", headers=learner.headers)).status_code == 204

    # Every token stops working.
    assert (await client.get("/me", headers=learner.headers)).status_code == 401
    refresh = {"refresh_token": signed_in["refresh_token"]}
    assert (await client.post("/auth/refresh", json=refresh)).status_code == 401

    # Nothing personal remains in any table: every row of every table with text columns,
    # read as text, is searched for the identifiers.
    tables = await db.scalars(
        text(
            "SELECT DISTINCT table_name FROM information_schema.columns WHERE table_schema = "
            "'public' AND data_type IN ('text', 'character varying', 'jsonb', 'inet')"
        )
    )
    needles = [learner.user.email, "my secret note", "my honest opinion", learner.user.name]
    for table in list(tables):
        for needle in needles:
            found = await db.scalar(
                text(f"SELECT count(*) FROM {table} t WHERE t::text ILIKE :needle"),
                {"needle": f"%{needle}%"},
            )
            assert found == 0, f"{needle!r} still in {table}"

    # The old credentials no longer sign in.
    credentials = {"email": learner.user.email, "password": learner.password}
    assert (await client.post("/auth/sign-in", json=credentials)).status_code == 401

    # The payment is kept for accounting, detached from the person; the course's rating is gone.
    payment = await db.scalar(
        select(Payment).where(Payment.stripe_checkout_session_id == "cs_private")
    )
    assert payment is not None
    assert payment.user_id is None
    assert payment.amount_cents == 1500
    detail = (await client.get(f"/courses/{course_id}")).json()
    assert detail["rating_count"] == 0
    user = await db.get(User, learner.user.id)
    assert user is not None
    assert user.erased_at is not None
    assert await db.scalar(select(AuditLog.id).where(AuditLog.action == "privacy.erase"))


async def test_erasing_a_reviewer_updates_the_cached_catalog(
    client: Client, make_course: MakeCourse, learner: Account
) -> None:
    """The erased review leaves the course's rating at once, not when the catalog cache expires."""
    course = await make_course("Rated by someone leaving", days=7)
    await client.put(f"/me/enrollments/{course.id}", headers=learner.headers)
    await client.put(f"/me/reviews/{course.id}", json={"rating": 5}, headers=learner.headers)
    detail = (await client.get(f"/courses/{course.slug}")).json()  # now cached
    assert (detail["rating_average"], detail["rating_count"]) == (5.0, 1)
    assert (await client.delete("/me", headers=learner.headers)).status_code == 204
    detail = (await client.get(f"/courses/{course.slug}")).json()
    assert (detail["rating_average"], detail["rating_count"]) == (0.0, 0)
