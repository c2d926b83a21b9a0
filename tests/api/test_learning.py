"""Enrollment, lessons, progress and the dashboard, as learners use them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta

import httpx
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_domain.catalog.models import Course, CourseStatus, Lesson
from momentum_domain.learning.models import Enrollment, Progress
from momentum_domain.learning.streaks import current_streak
from momentum_domain.users.models import Role, User
from tests.fixtures.app import Account, MakeAccount, MakeCourse

Client = httpx.AsyncClient


async def _lesson_ids(db: AsyncSession, course_id: uuid.UUID) -> list[uuid.UUID]:
    return list(
        await db.scalars(
            select(Lesson.id).where(Lesson.course_id == course_id).order_by(Lesson.day_number)
        )
    )


async def _backdate_enrollment(
    db: AsyncSession, user_id: uuid.UUID, course_id: uuid.UUID, days: int
) -> None:
    """Move an enrollment ``days`` back, so the daily schedule has opened that many more days."""
    await db.execute(
        update(Enrollment)
        .where(Enrollment.user_id == user_id, Enrollment.course_id == course_id)
        .values(created_at=Enrollment.created_at - timedelta(days=days))
    )
    await db.commit()


async def test_enroll_is_idempotent(
    client: Client, make_course: MakeCourse, learner: Account, db: AsyncSession
) -> None:
    course = await make_course()
    first = await client.put(f"/me/enrollments/{course.id}", headers=learner.headers)
    again = await client.put(f"/me/enrollments/{course.slug}", headers=learner.headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert first.json()["status"] == "ACTIVE"
    assert await db.scalar(select(func.count()).select_from(Enrollment)) == 1
    enrollment_count = (await client.get(f"/courses/{course.id}")).json()["enrollment_count"]
    assert enrollment_count == 1


async def test_twenty_concurrent_enrolls_make_one_enrollment(
    client: Client, make_course: MakeCourse, learner: Account, db: AsyncSession
) -> None:
    course = await make_course()
    responses = await asyncio.gather(
        *(client.put(f"/me/enrollments/{course.id}", headers=learner.headers) for _ in range(20))
    )
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert await db.scalar(select(func.count()).select_from(Enrollment)) == 1
    assert (await client.get(f"/courses/{course.id}")).json()["enrollment_count"] == 1


async def test_enrollment_count_follows_enrollments(
    client: Client,
    make_course: MakeCourse,
    make_account: MakeAccount,
    admin_account: Account,
    db: AsyncSession,
) -> None:
    """The database keeps the count (a trigger): new enrollments add, repeats do not, and an
    erased learner's enrollments leave it."""
    course = await make_course()
    first, second = await make_account(), await make_account()
    for account in (first, second, first):
        enrolled = await client.put(f"/me/enrollments/{course.id}", headers=account.headers)
        assert enrolled.status_code == 200

    async def count() -> int | None:
        db.expire_all()
        return await db.scalar(select(Course.enrollment_count).where(Course.id == course.id))

    assert await count() == 2
    assert (await client.delete("/me", headers=first.headers)).status_code == 204
    assert await count() == 1
    # Deleting the course takes its enrollments along; the trigger finds no course to count.
    deleted = await client.delete(f"/admin/courses/{course.id}", headers=admin_account.headers)
    assert deleted.status_code == 204
    assert await count() is None


async def test_entitlements_for_enrollment(
    client: Client, make_course: MakeCourse, make_account: MakeAccount
) -> None:
    premium = await make_course("Premium course", is_premium=True)
    paid = await make_course("Paid course", price_cents=2500)
    free_user = await make_account(Role.FREE)
    premium_user = await make_account(Role.PREMIUM)
    admin = await make_account(Role.ADMIN)
    for course in (premium, paid):
        denied = await client.put(f"/me/enrollments/{course.id}", headers=free_user.headers)
        assert denied.status_code == 403
        assert "premium" in denied.json()["detail"]
        for account in (premium_user, admin):
            allowed = await client.put(f"/me/enrollments/{course.id}", headers=account.headers)
            assert allowed.status_code == 200


async def test_a_refused_course_says_how_to_get_access(
    client: Client, make_course: MakeCourse, learner: Account
) -> None:
    premium = await make_course("Premium only", is_premium=True)
    paid = await make_course("Sold alone", is_premium=True, price_cents=2500)
    for course, get_access in [
        (premium, {"subscribe": "/checkout/subscription"}),
        (
            paid,
            {"subscribe": "/checkout/subscription", "buy": f"/checkout/course/{paid.id}"},
        ),
    ]:
        # The lesson no longer asks to enroll when enrolling would be refused too.
        lesson = await client.get(f"/courses/{course.slug}/lessons/2", headers=learner.headers)
        enroll = await client.put(f"/me/enrollments/{course.id}", headers=learner.headers)
        for response in (lesson, enroll):
            assert response.status_code == 403
            body = response.json()
            assert body["get_access"] == get_access
            assert "Enroll" not in body["detail"]
            assert "POST /checkout/subscription" in body["detail"]
            assert ("POST /checkout/course/" in body["detail"]) == ("buy" in get_access)
    # The links are the API's own checkout routes.
    paths = client.app.openapi_schema.paths or {}  # type: ignore[attr-defined]
    assert paths["/checkout/subscription"].post is not None
    assert paths["/checkout/course/{course_id}"].post is not None


async def test_enrolling_needs_a_published_course_and_a_user(
    client: Client, make_course: MakeCourse, learner: Account
) -> None:
    draft = await make_course(status=CourseStatus.DRAFT)
    assert (
        await client.put(f"/me/enrollments/{draft.id}", headers=learner.headers)
    ).status_code == 404
    assert (
        await client.put(f"/me/enrollments/{uuid.uuid4()}", headers=learner.headers)
    ).status_code == 404
    course = await make_course("Open")
    assert (await client.put(f"/me/enrollments/{course.id}")).status_code == 401


async def test_day_one_is_a_free_preview(
    client: Client, make_course: MakeCourse, learner: Account, db: AsyncSession
) -> None:
    course = await make_course("Preview me")
    preview = await client.get(f"/courses/{course.slug}/lessons/1")
    assert preview.status_code == 200
    body = preview.json()
    assert body["is_preview"] is True
    assert "<strong>preview me</strong>" in body["content_html"]
    assert body["my_progress"] is None

    assert (await client.get(f"/courses/{course.slug}/lessons/2")).status_code == 401
    not_enrolled = await client.get(f"/courses/{course.slug}/lessons/2", headers=learner.headers)
    assert not_enrolled.status_code == 403

    await client.put(f"/me/enrollments/{course.id}", headers=learner.headers)
    # Day 2 opens the day after enrolling (the daily schedule: tests/api/test_schedule.py).
    await _backdate_enrollment(db, learner.user.id, course.id, days=1)
    enrolled = await client.get(f"/courses/{course.slug}/lessons/2", headers=learner.headers)
    assert enrolled.status_code == 200
    assert enrolled.json()["is_preview"] is False
    assert (
        await client.get(f"/courses/{course.slug}/lessons/8", headers=learner.headers)
    ).status_code == 404


async def test_progress_is_an_upsert(
    client: Client, make_course: MakeCourse, learner: Account, db: AsyncSession
) -> None:
    course = await make_course()
    await client.put(f"/me/enrollments/{course.id}", headers=learner.headers)
    lesson_id = (await _lesson_ids(db, course.id))[0]
    url = f"/me/progress/{lesson_id}"

    first = await client.put(
        url, json={"add_time_seconds": 60, "notes": "Good start"}, headers=learner.headers
    )
    assert first.status_code == 200, first.text
    second = await client.put(
        url, json={"completed": True, "add_time_seconds": 30}, headers=learner.headers
    )
    progress = second.json()["progress"]
    assert progress["completed"] is True
    assert progress["time_spent_seconds"] == 90
    assert progress["notes"] == "Good start"  # omitted fields keep their value
    assert progress["completed_at"] is not None
    assert second.json()["enrollment"]["completion_percent"] == 14  # 1 of 7

    lesson = await client.get(f"/courses/{course.id}/lessons/1", headers=learner.headers)
    assert lesson.json()["my_progress"]["time_spent_seconds"] == 90
    assert await db.scalar(select(func.count()).select_from(Progress)) == 1


async def test_twenty_concurrent_progress_upserts_on_one_row(
    client: Client, make_course: MakeCourse, learner: Account, db: AsyncSession
) -> None:
    course = await make_course()
    await client.put(f"/me/enrollments/{course.id}", headers=learner.headers)
    lesson_id = (await _lesson_ids(db, course.id))[0]
    responses = await asyncio.gather(
        *(
            client.put(
                f"/me/progress/{lesson_id}",
                json={"add_time_seconds": 10, "completed": True},
                headers=learner.headers,
            )
            for _ in range(20)
        )
    )
    assert {r.status_code for r in responses} == {200}
    row = await db.scalar(select(Progress))
    assert row is not None
    assert row.time_spent_seconds == 200  # no lost update
    assert await db.scalar(select(func.count()).select_from(Progress)) == 1


async def test_completing_every_lesson_completes_the_enrollment(
    client: Client, make_course: MakeCourse, learner: Account, db: AsyncSession
) -> None:
    course = await make_course(days=7)
    await client.put(f"/me/enrollments/{course.id}", headers=learner.headers)
    lesson_ids = await _lesson_ids(db, course.id)
    # Completed concurrently: the completion count must still see all seven.
    responses = await asyncio.gather(
        *(
            client.put(f"/me/progress/{lid}", json={"completed": True}, headers=learner.headers)
            for lid in lesson_ids
        )
    )
    assert {r.status_code for r in responses} == {200}
    progress = (await client.get(f"/me/enrollments/{course.id}", headers=learner.headers)).json()
    assert progress["enrollment"]["status"] == "COMPLETED"
    assert progress["enrollment"]["completion_percent"] == 100
    assert progress["enrollment"]["completed_at"] is not None
    assert all(lesson["completed"] for lesson in progress["lessons"])

    undone = await client.put(
        f"/me/progress/{lesson_ids[3]}", json={"completed": False}, headers=learner.headers
    )
    assert undone.json()["enrollment"]["status"] == "ACTIVE"
    assert undone.json()["enrollment"]["completed_at"] is None
    assert undone.json()["progress"]["completed_at"] is None


async def test_a_completion_racing_another_is_counted_again(
    client: Client,
    make_course: MakeCourse,
    learner: Account,
    db: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Progress writes take no lock up front: a request whose counts missed a concurrent
    completion finds the enrollment changed, and counts again."""
    course = await make_course(days=7)
    await client.put(f"/me/enrollments/{course.id}", headers=learner.headers)
    day_one, *middle, last_day = await _lesson_ids(db, course.id)
    for lesson_id in middle:
        done = await client.put(
            f"/me/progress/{lesson_id}", json={"completed": True}, headers=learner.headers
        )
        assert done.status_code == 200
    async with sessions() as other, other.begin():
        # Another request completes day 1 and has not committed yet.
        await other.execute(
            insert(Progress).values(
                user_id=learner.user.id,
                lesson_id=day_one,
                course_id=course.id,
                completed=True,
                completed_at=datetime.now(UTC),
            )
        )
        await other.execute(
            update(Enrollment)
            .where(Enrollment.user_id == learner.user.id)
            .values(last_accessed_at=datetime.now(UTC))
        )
        racing = asyncio.create_task(
            client.put(
                f"/me/progress/{last_day}", json={"completed": True}, headers=learner.headers
            )
        )
        # It counts without day 1, then waits for the enrollment the other holds.
        await _until_waiting_on_a_lock(db)
        assert not racing.done()
    response = await racing
    assert response.status_code == 200
    assert response.json()["enrollment"]["status"] == "COMPLETED"
    assert response.json()["enrollment"]["completion_percent"] == 100


async def _until_waiting_on_a_lock(db: AsyncSession, within: float = 10.0) -> None:
    """Until some statement of this database waits for a row lock."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = asyncio.get_running_loop().time() + within
    while not (await db.execute(waiting)).scalar_one():
        assert asyncio.get_running_loop().time() < deadline, "nothing waited on the lock"
        await asyncio.sleep(0.02)
        await db.rollback()  # a new snapshot of pg_stat_activity


async def test_progress_is_refused_and_not_written_once_access_ends(
    client: Client,
    make_course: MakeCourse,
    make_account: MakeAccount,
    admin_account: Account,
    db: AsyncSession,
) -> None:
    course = await make_course(is_premium=True)
    member = await make_account(Role.PREMIUM)
    await client.put(f"/me/enrollments/{course.id}", headers=member.headers)
    lesson_id = (await _lesson_ids(db, course.id))[1]
    body = {"add_time_seconds": 60, "notes": "kept"}
    first = await client.put(f"/me/progress/{lesson_id}", json=body, headers=member.headers)
    assert first.status_code == 200

    demoted = await client.put(
        f"/admin/users/{member.user.id}/role", json={"role": "FREE"}, headers=admin_account.headers
    )
    assert demoted.status_code == 200
    refused = await client.put(
        f"/me/progress/{lesson_id}", json={"add_time_seconds": 60, "notes": "changed"},
        headers=member.headers,
    )  # fmt: skip
    assert refused.status_code == 403
    assert refused.json()["detail"] == "Your access to this course has ended."
    db.expire_all()
    progress = await db.scalar(select(Progress).where(Progress.lesson_id == lesson_id))
    assert progress is not None
    assert (progress.time_spent_seconds, progress.notes) == (60, "kept")


async def test_access_follows_the_role_in_the_database_at_once(
    client: Client, make_course: MakeCourse, make_account: MakeAccount, db: AsyncSession
) -> None:
    """A role changed behind the API's back (as Stripe's webhook does) applies to course access
    on the next request, although the caller's principal is cached."""
    course = await make_course(is_premium=True)
    member = await make_account(Role.PREMIUM)
    await client.put(f"/me/enrollments/{course.id}", headers=member.headers)
    await _backdate_enrollment(db, member.user.id, course.id, days=1)
    lesson = f"/courses/{course.id}/lessons/2"
    assert (await client.get(lesson, headers=member.headers)).status_code == 200
    await db.execute(update(User).where(User.id == member.user.id).values(role=Role.FREE))
    await db.commit()
    closed = await client.get(lesson, headers=member.headers)
    assert closed.status_code == 403
    assert closed.json()["detail"] == "Your access to this course has ended."


async def test_progress_needs_an_enrollment(
    client: Client, make_course: MakeCourse, learner: Account, db: AsyncSession
) -> None:
    course = await make_course()
    lesson_id = (await _lesson_ids(db, course.id))[0]
    response = await client.put(
        f"/me/progress/{lesson_id}", json={"completed": True}, headers=learner.headers
    )
    assert response.status_code == 403
    assert await db.scalar(select(func.count()).select_from(Progress)) == 0
    missing = await client.put(f"/me/progress/{uuid.uuid4()}", json={}, headers=learner.headers)
    assert missing.status_code == 404


async def test_bad_progress_input(
    client: Client, make_course: MakeCourse, learner: Account, db: AsyncSession
) -> None:
    course = await make_course()
    await client.put(f"/me/enrollments/{course.id}", headers=learner.headers)
    url = f"/me/progress/{(await _lesson_ids(db, course.id))[0]}"
    for body in (
        {"add_time_seconds": -5},
        {"add_time_seconds": 10**9},
        {"completed": "yes"},
        {"user_id": str(uuid.uuid4())},
    ):
        response = await client.put(url, json=body, headers=learner.headers)
        assert response.status_code == 400, body
    assert (
        await client.put("/me/progress/not-a-uuid", json={}, headers=learner.headers)
    ).status_code in {400, 404}
    assert await db.scalar(select(func.count()).select_from(Progress)) == 0


async def test_learners_never_see_each_others_progress(
    client: Client, make_course: MakeCourse, make_account: MakeAccount, db: AsyncSession
) -> None:
    course = await make_course()
    alice = await make_account(Role.FREE)
    bob = await make_account(Role.FREE)
    await client.put(f"/me/enrollments/{course.id}", headers=alice.headers)
    lesson_id = (await _lesson_ids(db, course.id))[0]
    await client.put(
        f"/me/progress/{lesson_id}", json={"notes": "alice's secret"}, headers=alice.headers
    )

    assert (await client.get("/me/enrollments", headers=bob.headers)).json() == []
    assert (
        await client.get(f"/me/enrollments/{course.id}", headers=bob.headers)
    ).status_code == 404
    bob_lesson = await client.get(f"/courses/{course.id}/lessons/1", headers=bob.headers)
    assert bob_lesson.json()["my_progress"] is None
    # Bob cannot write to Alice's row either: without his own enrollment it is refused...
    denied = await client.put(
        f"/me/progress/{lesson_id}", json={"notes": "bob"}, headers=bob.headers
    )
    assert denied.status_code == 403
    # ...and with it, he writes his own row.
    await client.put(f"/me/enrollments/{course.id}", headers=bob.headers)
    await client.put(f"/me/progress/{lesson_id}", json={"notes": "bob"}, headers=bob.headers)
    notes = dict((await db.execute(select(Progress.user_id, Progress.notes))).all())
    assert notes == {alice.user.id: "alice's secret", bob.user.id: "bob"}


async def test_my_enrollments_and_dashboard(
    client: Client, make_course: MakeCourse, learner: Account, db: AsyncSession
) -> None:
    week = await make_course("A week", days=7)
    fortnight = await make_course("A fortnight", days=14)
    for course in (week, fortnight):
        await client.put(f"/me/enrollments/{course.id}", headers=learner.headers)
    for lesson_id in await _lesson_ids(db, week.id):
        await client.put(
            f"/me/progress/{lesson_id}",
            json={"completed": True, "add_time_seconds": 120},
            headers=learner.headers,
        )
    first_fortnight_lesson = (await _lesson_ids(db, fortnight.id))[0]
    await client.put(
        f"/me/progress/{first_fortnight_lesson}",
        json={"add_time_seconds": 45},
        headers=learner.headers,
    )

    enrollments = (await client.get("/me/enrollments", headers=learner.headers)).json()
    by_title = {e["course_title"]: e for e in enrollments}
    assert by_title["A week"]["completion_percent"] == 100
    assert by_title["A week"]["status"] == "COMPLETED"
    assert by_title["A fortnight"]["completion_percent"] == 0

    dashboard = (await client.get("/me/dashboard", headers=learner.headers)).json()
    assert dashboard == {
        "active_courses": 1,
        "completed_courses": 1,
        "lessons_completed": 7,
        "total_time_seconds": 7 * 120 + 45,
        "current_streak_days": 1,
    }


async def test_streak_counts_consecutive_days(
    client: Client, make_course: MakeCourse, learner: Account, db: AsyncSession
) -> None:
    course = await make_course(days=7)
    await client.put(f"/me/enrollments/{course.id}", headers=learner.headers)
    lesson_ids = await _lesson_ids(db, course.id)
    now = datetime.now(UTC)
    # Completed yesterday, the day before and the day before that; a gap; then older.
    for lesson_id, days_ago in zip(lesson_ids, [1, 2, 3, 5, 6], strict=False):
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
    dashboard = (await client.get("/me/dashboard", headers=learner.headers)).json()
    assert dashboard["current_streak_days"] == 3


def test_current_streak() -> None:
    today = date(2026, 3, 10)
    days = {date(2026, 3, 10), date(2026, 3, 9), date(2026, 3, 7)}
    assert current_streak(days, today) == 2
    assert current_streak({date(2026, 3, 9), date(2026, 3, 8)}, today) == 2  # today still open
    assert current_streak({date(2026, 3, 8)}, today) == 0
    assert current_streak(set(), today) == 0


async def test_learning_endpoints_need_a_user(client: Client) -> None:
    for path in ("/me/enrollments", "/me/dashboard", f"/me/enrollments/{uuid.uuid4()}"):
        assert (await client.get(path)).status_code == 401
    assert (await client.put(f"/me/progress/{uuid.uuid4()}", json={})).status_code == 401
