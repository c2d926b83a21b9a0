"""Enrollment, lesson access and progress: the learner's side of a course.

These are the platform's hottest paths, so each reads what it needs in one Core statement
(``learning.statements``) and returns plain rows rather than ORM objects."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.catalog.models import Course, CoursePacing, CourseStatus, Lesson
from momentum_domain.catalog.service import parse_ref
from momentum_domain.commerce.entitlements import is_premium_member
from momentum_domain.commerce.events import CoursePurchased
from momentum_domain.config import get_settings
from momentum_domain.errors import Forbidden, NotFound, Unauthorized
from momentum_domain.kit.db import run
from momentum_domain.kit.unit_of_work import commit, dispatch
from momentum_domain.learning.events import LessonCompleted
from momentum_domain.learning.models import Enrollment, EnrollmentStatus, Progress
from momentum_domain.learning.schedule import days_open, opening_time
from momentum_domain.learning.statements import (
    ENROLLMENT_COLUMNS,
    AnyRow,
    completion_refresh_statement,
    course_access_statement,
    dashboard_statement,
    enroll_statement,
    enrollment_by_id_statement,
    enrollment_statement,
    enrollment_version_statement,
    is_enrolled_statement,
    lesson_statement,
    progress_statement,
    today_statement,
)
from momentum_domain.learning.streaks import current_streak
from momentum_domain.learning.today import Today, courses_today
from momentum_domain.users.models import Role
from momentum_domain.users.service import users

logger = logging.getLogger(__name__)

FREE_PREVIEW_DAY = 1
# Attempts at refreshing one enrollment's completion while other requests keep changing it.
COMPLETION_ATTEMPTS = 20


@dataclass(frozen=True, slots=True)
class Learner:
    id: uuid.UUID
    role: Role


@dataclass(frozen=True, slots=True)
class ProgressChange:
    completed: bool | None = None
    add_time_seconds: int = 0
    notes: str | None = None


@dataclass(frozen=True, slots=True)
class EnrollmentState:
    id: uuid.UUID
    course_id: uuid.UUID
    status: EnrollmentStatus
    completion_percent: int
    created_at: datetime
    completed_at: datetime | None

    @classmethod
    def prefixed(cls, row: AnyRow) -> EnrollmentState:
        """From a row that carries the enrollment as ``enrollment_<column>``."""
        return cls(*(getattr(row, f"enrollment_{column.key}") for column in ENROLLMENT_COLUMNS))


@dataclass(frozen=True, slots=True)
class Dashboard:
    active_courses: int
    completed_courses: int
    lessons_completed: int
    total_time_seconds: int
    current_streak_days: int


def _course_ref(ref: str) -> tuple[bool, uuid.UUID | str]:
    """Whether a course reference is an id (else a slug), and its parameter value."""
    course_id = parse_ref(ref)
    return (True, course_id) if course_id is not None else (False, ref)


def _no_access(access: AnyRow, course_id: uuid.UUID, to: str) -> Forbidden:
    """The refusal of a course the learner is not entitled to, with the checkout routes (the
    API's POST /checkout/...) that would open it."""
    get_access = {"subscribe": "/checkout/subscription"}
    ways = "subscribe to premium (POST /checkout/subscription)"
    if access.price_cents > 0:  # else it comes only with premium
        get_access["buy"] = f"/checkout/course/{course_id}"
        ways += f" or buy it (POST {get_access['buy']})"
    return Forbidden(
        f"This course is for premium members or buyers: {ways} to {to}.",
        extra={"course_id": str(course_id), "premium": access.is_premium, "get_access": get_access},
    )


class LearningService:
    async def enroll(
        self, session: AsyncSession, learner: Learner, course_ref: str
    ) -> EnrollmentState:
        """Enroll once: the course and the entitlement in one statement, then the enrollment
        inserted or found in another. Repeats and concurrent calls all return the same
        enrollment. Every statement is atomic on its own (an autocommit session), so no
        transaction is held; ``commit`` ends the unit of work."""
        by_id, ref = _course_ref(course_ref)
        course = (
            await run(
                session,
                course_access_statement(by_id),
                {"course_ref": ref, "user_id": learner.id},
            )
        ).one_or_none()
        if course is None or course.course_status is not CourseStatus.PUBLISHED:
            raise NotFound("No such course.")
        if not course.allowed:
            raise _no_access(course, course.id, "enroll in it")
        keys = {"user_id": learner.id, "course_id": course.id}
        enrollment: AnyRow | None = (
            await run(session, enroll_statement(), {"id": uuid.uuid4(), **keys})
        ).one_or_none()
        if enrollment is None:
            # The concurrent first enrollment has committed: a new statement sees it.
            enrollment = (await run(session, enrollment_statement(), keys)).one()
        await commit(session)
        return EnrollmentState(**enrollment._asdict())

    async def on_course_purchased(self, session: AsyncSession, purchased: CoursePurchased) -> None:
        """Enroll the buyer of a course in the transaction that records the payment (bound with
        ``Handlers.within``); an enrollment that exists already is kept as it is."""
        keys = {"user_id": purchased.user_id, "course_id": purchased.course_id}
        await run(session, enroll_statement(), {"id": uuid.uuid4(), **keys})

    async def is_enrolled(
        self, session: AsyncSession, user_id: uuid.UUID, course_id: uuid.UUID
    ) -> bool:
        keys = {"user_id": user_id, "course_id": course_id}
        return bool((await run(session, is_enrolled_statement(), keys)).scalar())

    async def open_lesson(
        self,
        session: AsyncSession,
        learner: Learner | None,
        course_ref: str,
        day: int,
        now: datetime,
    ) -> AnyRow:
        """A lesson's full content, with the caller's progress (``progress_id`` is NULL when
        there is none): day 1 is a free preview of any published course; other days are for
        enrolled learners once the schedule (``learning.schedule``) has opened them at ``now``,
        and for admins."""
        is_admin = learner is not None and learner.role is Role.ADMIN
        by_id, ref = _course_ref(course_ref)
        row: AnyRow | None = (
            await run(
                session,
                lesson_statement(by_id),
                {
                    "course_ref": ref,
                    "day": day,
                    "user_id": learner.id if learner else None,
                },
            )
        ).one_or_none()
        if row is None or (row.course_status is not CourseStatus.PUBLISHED and not is_admin):
            raise NotFound("No such course.")
        if row.id is None:
            raise NotFound(f"This course has no lesson for day {day}.")
        if day == FREE_PREVIEW_DAY or is_admin:
            return row
        if learner is None:
            raise Unauthorized("Sign in and enroll in this course to read this lesson.")
        if not row.enrolled and not row.allowed:
            # Enrolling would be refused too: say what opens the course.
            raise _no_access(row, row.course_id, "read this lesson")
        if not row.enrolled:
            raise Forbidden("Enroll in this course to read this lesson.")
        if not row.allowed:
            raise Forbidden(
                "Your access to this course has ended.", extra={"course_id": str(row.course_id)}
            )
        await self._check_opened(session, learner, row, now)
        return row

    async def _check_opened(
        self, session: AsyncSession, learner: Learner, row: AnyRow, now: datetime
    ) -> None:
        """Refuse a day the schedule has not opened yet, saying when it opens."""
        if row.pacing is CoursePacing.SELF_PACED:
            return
        zone = (await users.preferences(session, learner.id)).zone
        if row.day_number <= days_open(row.enrolled_at, now, zone):
            return
        if get_settings().schedule_premium_unlocks_all and await is_premium_member(
            session, learner.id
        ):
            return
        opens = opening_time(row.enrolled_at, row.day_number, zone)
        raise Forbidden(
            f"Day {row.day_number} opens on {opens.date().isoformat()} ({zone.key}): "
            "one lesson opens each day.",
            extra={
                "course_id": str(row.course_id),
                "day": row.day_number,
                "opens_on": opens.date().isoformat(),
                "opens_at": opens.isoformat(),
                "time_zone": zone.key,
            },
        )

    async def record_progress(
        self, session: AsyncSession, learner: Learner, lesson_id: uuid.UUID, change: ProgressChange
    ) -> tuple[AnyRow, EnrollmentState]:
        """Upsert the learner's progress on a lesson and refresh the enrollment's completion.
        Returns the progress and the enrollment. One atomic statement checks access and writes
        (no transaction, no lock held across round trips); if another request changed the
        enrollment meanwhile, it is recounted (a statement more) until no one has."""
        now = datetime.now(UTC)
        row = (
            await run(
                session,
                progress_statement(change.completed is not None, change.notes is not None),
                {
                    "new_id": uuid.uuid4(),
                    "learner": learner.id,
                    "lesson": lesson_id,
                    "mark_completed": bool(change.completed),
                    "completed_time": now if change.completed else None,
                    "add_seconds": change.add_time_seconds,
                    "note": change.notes,
                    "now": now,
                },
            )
        ).one_or_none()
        if row is None:
            await self._why_no_enrollment(session, lesson_id)
        assert row is not None
        if row.course_status is not CourseStatus.PUBLISHED:
            raise NotFound("No such lesson.")
        if not row.allowed:
            raise Forbidden(
                "Your access to this course has ended.", extra={"course_id": str(row.course_id)}
            )
        if row.enrollment_id is not None:
            enrollment = EnrollmentState.prefixed(row)
        else:
            enrollment = await self._recount(session, learner, row, now)
        # Only when this request completed the lesson: a repeat keeps the first completed_at, so
        # it is not ``now``. Its reactions (badges) are written before the learner hears back.
        if change.completed and row.completed_at == now:
            await dispatch(session, LessonCompleted(learner.id, lesson_id, now))
        await commit(session)
        return row, enrollment

    async def _recount(
        self, session: AsyncSession, learner: Learner, access: AnyRow, now: datetime
    ) -> EnrollmentState:
        """Another request changed the enrollment while this one counted: count again, from a
        newer snapshot, until no one has changed it in between."""
        keys = {"enrollment": access.target_enrollment}
        for _ in range(COMPLETION_ATTEMPTS):
            version = (await run(session, enrollment_version_statement(), keys)).scalar_one()
            values = {
                **keys,
                "seen_version": version,
                "learner": learner.id,
                "course": access.course_id,
                "now": now,
            }
            refreshed = (await run(session, completion_refresh_statement(), values)).one_or_none()
            if refreshed is not None:
                return EnrollmentState.prefixed(refreshed)
        # The progress is recorded and must not be reported as failed (a retry would add the
        # time again); the writes still racing recount the enrollment after this one.
        logger.warning("enrollment %s kept changing; not recounted", access.target_enrollment)
        current = (await run(session, enrollment_by_id_statement(), keys)).one()
        return EnrollmentState(**current._asdict())

    async def _why_no_enrollment(self, session: AsyncSession, lesson_id: uuid.UUID) -> None:
        published = await session.scalar(
            select(
                exists()
                .where(Lesson.id == lesson_id, Course.id == Lesson.course_id)
                .where(Course.status == CourseStatus.PUBLISHED)
            )
        )
        if not published:
            raise NotFound("No such lesson.")
        raise Forbidden("Enroll in this course to record progress.")

    async def my_enrollments(
        self, session: AsyncSession, user_id: uuid.UUID
    ) -> list[tuple[Enrollment, Course]]:
        rows = await session.execute(
            select(Enrollment, Course)
            .join(Course, Course.id == Enrollment.course_id)
            .where(Enrollment.user_id == user_id)
            .order_by(Enrollment.created_at.desc())
        )
        return [(enrollment, course) for enrollment, course in rows.all()]

    async def course_progress(
        self, session: AsyncSession, user_id: uuid.UUID, course_id: uuid.UUID
    ) -> tuple[EnrollmentState, list[tuple[Lesson, Progress | None]]]:
        keys = {"user_id": user_id, "course_id": course_id}
        enrollment = (await run(session, enrollment_statement(), keys)).one_or_none()
        if enrollment is None:
            raise NotFound("You are not enrolled in this course.")
        rows = await session.execute(
            select(Lesson, Progress)
            .outerjoin(Progress, and_(Progress.lesson_id == Lesson.id, Progress.user_id == user_id))
            .where(Lesson.course_id == course_id)
            .order_by(Lesson.day_number)
        )
        lessons: list[tuple[Lesson, Progress | None]] = [
            (lesson, progress) for lesson, progress in rows.all()
        ]
        return EnrollmentState(**enrollment._asdict()), lessons

    async def dashboard(
        self, session: AsyncSession, user_id: uuid.UUID, now: datetime
    ) -> Dashboard:
        """The learner's totals; their streak counts days in their time zone."""
        zone = (await users.preferences(session, user_id)).zone
        params = {"user_id": user_id, "zone": zone.key}
        row = (await run(session, dashboard_statement(), params)).one()
        today = now.astimezone(zone).date()
        return Dashboard(
            active_courses=int(row.active),
            completed_courses=int(row.done),
            lessons_completed=int(row.lessons),
            total_time_seconds=int(row.seconds),
            current_streak_days=current_streak(set(row.days or ()), today),
        )

    async def today(self, session: AsyncSession, user_id: uuid.UUID, now: datetime) -> Today:
        """Today's lesson of each active enrollment under the daily schedule, and the streak,
        both in the learner's time zone."""
        zone = (await users.preferences(session, user_id)).zone
        params = {"user_id": user_id, "zone": zone.key}
        rows = (await run(session, today_statement(), params)).all()
        days = (await run(session, dashboard_statement(), params)).one().days
        today = now.astimezone(zone).date()
        return Today(
            date=today,
            time_zone=zone.key,
            current_streak_days=current_streak(set(days or ()), today),
            courses=courses_today(rows, now, zone),
        )


learning = LearningService()

__all__ = [
    "Dashboard",
    "EnrollmentState",
    "Learner",
    "LearningService",
    "ProgressChange",
    "Today",
    "learning",
]
