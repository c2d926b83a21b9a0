"""Enrollment, lesson access and progress: the learner's side of a course.

These are the platform's hottest paths, so each reads what it needs in one Core statement
(the lesson, the course, the caller's enrollment and progress, and the facts the entitlement
rule needs, together) and returns plain rows rather than ORM objects."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Any, TypeAlias

from sqlalchemy import (
    BindParameter,
    Executable,
    Row,
    Select,
    Text,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal_column,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.catalog.models import Course, CourseStatus, Lesson
from momentum_domain.catalog.service import parse_ref
from momentum_domain.community.service import badges
from momentum_domain.db import run
from momentum_domain.errors import Forbidden, NotFound, Unauthorized
from momentum_domain.learning.entitlements import may_open
from momentum_domain.learning.models import Enrollment, EnrollmentStatus, Progress
from momentum_domain.learning.streaks import current_streak
from momentum_domain.users.models import Role

logger = logging.getLogger(__name__)

FREE_PREVIEW_DAY = 1

# A result row of any shape; its columns are read by name.
AnyRow: TypeAlias = Row[*tuple[Any, ...]]
AnySelect: TypeAlias = Select[*tuple[Any, ...]]

# The columns handlers show of an enrollment and of a progress row.
ENROLLMENT_COLUMNS = (
    Enrollment.id,
    Enrollment.course_id,
    Enrollment.status,
    Enrollment.completion_percent,
    Enrollment.created_at,
    Enrollment.completed_at,
)
PROGRESS_COLUMNS = (
    Progress.lesson_id,
    Progress.completed,
    Progress.completed_at,
    Progress.time_spent_seconds,
    Progress.notes,
)


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


def _names_course(by_id: bool) -> Any:
    return (Course.id if by_id else Course.slug) == bindparam("course_ref")


def _access_columns(user_id: Any) -> tuple[Any, ...]:
    """The course's status, its premium flag and price, and whether the user may open it, for
    one statement's select list."""
    return (
        Course.status.label("course_status"),
        Course.is_premium,
        Course.price_cents,
        may_open(user_id).label("allowed"),
    )


@cache
def _lesson_statement(by_id: bool) -> AnySelect:
    """A course's lesson for a day, with the caller's enrollment and progress and the
    entitlement facts; the rows that are missing come back as NULLs."""
    user = _user()
    return (
        select(
            Course.id.label("course_id"),
            *_access_columns(user),
            Enrollment.id.is_not(None).label("enrolled"),
            Lesson.id,
            Lesson.day_number,
            Lesson.title,
            Lesson.content_markdown,
            Lesson.content_html,
            Lesson.action_items,
            Lesson.resources,
            Lesson.video_status,
            Lesson.video_url,
            Lesson.video_duration_seconds,
            Progress.id.label("progress_id"),
            Progress.completed,
            Progress.completed_at,
            Progress.time_spent_seconds,
            Progress.notes,
        )
        .select_from(Course)
        .outerjoin(
            Lesson, and_(Lesson.course_id == Course.id, Lesson.day_number == bindparam("day"))
        )
        .outerjoin(Enrollment, and_(Enrollment.course_id == Course.id, Enrollment.user_id == user))
        .outerjoin(Progress, and_(Progress.lesson_id == Lesson.id, Progress.user_id == user))
        .where(_names_course(by_id))
    )


# An enrollment row's version: its xmin, the transaction that wrote it, changes with every write.
ENROLLMENT_VERSION = cast(literal_column("enrollments.xmin"), Text)
# Attempts at refreshing one enrollment's completion while other requests keep changing it.
COMPLETION_ATTEMPTS = 20


@cache
def _progress_statement(sets_completed: bool, sets_notes: bool) -> AnySelect:
    """Record progress in one statement: check access, upsert (user, lesson), and refresh the
    enrollment's completion.

    ``access`` finds the lesson's course and the caller's enrollment, and decides the
    entitlement; the upsert happens only for a published course the caller may open, and the
    caller learns from the returned row what was refused. The counts see the tables as they were
    when the statement began, so the row being written is counted from what the upsert returns,
    and the enrollment is updated only if no one has changed it since: otherwise its completions
    might be missing from the counts, and the enrollment comes back empty for the caller to
    recount.
    """
    # Parameter names are never column names: SQLAlchemy would add an execution parameter
    # named after a column of the updated table to the UPDATE's SET clause.
    user: BindParameter[uuid.UUID] = bindparam("learner", type_=Progress.user_id.type)
    lesson: BindParameter[uuid.UUID] = bindparam("lesson", type_=Progress.lesson_id.type)
    now: BindParameter[datetime] = bindparam("now", type_=Progress.completed_at.type)
    access = (
        select(
            Lesson.course_id,
            *_access_columns(user),
            Enrollment.id.label("target_enrollment"),
            ENROLLMENT_VERSION.label("target_version"),
        )
        .select_from(Lesson)
        .join(Course, Course.id == Lesson.course_id)
        .join(
            Enrollment, and_(Enrollment.course_id == Lesson.course_id, Enrollment.user_id == user)
        )
        .where(Lesson.id == lesson)
        .cte("access")
    )

    values = select(
        bindparam("new_id", type_=Progress.id.type),
        user,
        lesson,
        access.c.course_id,
        bindparam("mark_completed", type_=Progress.completed.type),
        bindparam("completed_time", type_=Progress.completed_at.type),
        bindparam("add_seconds", type_=Progress.time_spent_seconds.type),
        bindparam("note", type_=Progress.notes.type),
    ).where(access.c.course_status == CourseStatus.PUBLISHED.value, access.c.allowed)
    stmt = insert(Progress).from_select(
        ["id", "user_id", "lesson_id", "course_id", "completed", "completed_at",
         "time_spent_seconds", "notes"],
        values,
    )  # fmt: skip
    excluded = stmt.excluded
    updates: dict[str, Any] = {
        "time_spent_seconds": Progress.time_spent_seconds + excluded.time_spent_seconds
    }
    if sets_completed:
        updates["completed"] = excluded.completed
        # Keep the first completion time when a completed lesson is completed again.
        updates["completed_at"] = case(
            (excluded.completed.is_(False), None),
            else_=func.coalesce(Progress.completed_at, excluded.completed_at),
        )
    if sets_notes:
        updates["notes"] = excluded.notes
    upserted = (
        stmt.on_conflict_do_update(
            index_elements=[Progress.user_id, Progress.lesson_id], set_=updates
        )
        .returning(*PROGRESS_COLUMNS)
        .cte("upserted")
    )

    total = _lessons_in(access.c.course_id)
    others_done = _lessons_completed(user, access.c.course_id, Progress.lesson_id != lesson)
    this_done = select(case((upserted.c.completed, 1), else_=0)).scalar_subquery()
    # Counted once (PostgreSQL would evaluate a repeated subquery each time it appears), and
    # only when the progress was written.
    counts = (
        select(
            access.c.target_enrollment.label("enrollment_id"),
            access.c.target_version.label("version"),
            total.label("total"),
            (others_done + this_done).label("done"),
        )
        .where(exists(select(upserted.c.lesson_id)))
        .cte("counts")
    )
    enrollment = _completion_update(counts, now).cte("enrollment")
    return select(access, upserted, enrollment).select_from(
        access.outerjoin(upserted, true()).outerjoin(enrollment, true())
    )


def _lessons_in(course_id: Any) -> Any:
    """The number of the course's lessons, as a scalar subquery."""
    return select(func.count()).where(Lesson.course_id == course_id).scalar_subquery()


def _lessons_completed(user_id: Any, course_id: Any, *conditions: Any) -> Any:
    """The number of the course's lessons the learner has completed (that meet ``conditions``),
    as a scalar subquery."""
    return (
        select(func.count())
        .where(
            Progress.user_id == user_id,
            Progress.course_id == course_id,
            Progress.completed.is_(True),
            *conditions,
        )
        .scalar_subquery()
    )


def _completion_update(counts: Any, now: Any) -> Any:
    """Set an enrollment's completion from ``counts`` (its ``enrollment_id``, the ``version``
    read, the course's ``total`` lessons and the learner's ``done`` ones), if it is still that
    version. The rule: the percent is the share completed; when every lesson is complete the
    enrollment is COMPLETED (from the first time it became so), and a completed enrollment with a
    lesson un-completed is ACTIVE again."""
    complete = and_(counts.c.total > 0, counts.c.done >= counts.c.total)
    was_complete = Enrollment.status == EnrollmentStatus.COMPLETED
    return (
        update(Enrollment)
        .where(Enrollment.id == counts.c.enrollment_id, counts.c.version == ENROLLMENT_VERSION)
        .values(
            completion_percent=case(
                (counts.c.total > 0, func.round(100.0 * counts.c.done / counts.c.total)),
                else_=0,
            ),
            status=case(
                (complete, EnrollmentStatus.COMPLETED.value),
                (was_complete, EnrollmentStatus.ACTIVE.value),
                else_=Enrollment.status,
            ),
            completed_at=case(
                (complete, func.coalesce(Enrollment.completed_at, now)),
                (was_complete, None),
                else_=Enrollment.completed_at,
            ),
            last_accessed_at=now,
        )
        .returning(*(column.label(f"enrollment_{column.key}") for column in ENROLLMENT_COLUMNS))
    )


@cache
def _completion_refresh_statement() -> Any:
    """Recount and set an enrollment's completion (guarded by its version, as above)."""
    user: BindParameter[uuid.UUID] = bindparam("learner")
    course: BindParameter[uuid.UUID] = bindparam("course")
    total, done = _lessons_in(course), _lessons_completed(user, course)
    counts = select(
        bindparam("enrollment", type_=Enrollment.id.type).label("enrollment_id"),
        bindparam("seen_version").label("version"),
        total.label("total"),
        done.label("done"),
    ).cte("counts")
    return _completion_update(counts, bindparam("now", type_=Progress.completed_at.type))


@cache
def _enrollment_by_id_statement() -> AnySelect:
    return select(*ENROLLMENT_COLUMNS).where(Enrollment.id == bindparam("enrollment"))


@cache
def _enrollment_version_statement() -> AnySelect:
    return select(ENROLLMENT_VERSION).where(Enrollment.id == bindparam("enrollment"))


def _user() -> BindParameter[uuid.UUID]:
    return bindparam("user_id", type_=Enrollment.user_id.type)


@cache
def _course_access_statement(by_id: bool) -> AnySelect:
    return select(Course.id, *_access_columns(_user())).where(_names_course(by_id))


@cache
def _enrollment_statement() -> AnySelect:
    return select(*ENROLLMENT_COLUMNS).where(
        Enrollment.user_id == _user(), Enrollment.course_id == bindparam("course_id")
    )


@cache
def _is_enrolled_statement() -> AnySelect:
    return select(
        exists().where(
            Enrollment.user_id == _user(), Enrollment.course_id == bindparam("course_id")
        )
    )


@cache
def _enroll_statement() -> Executable:
    """Enroll, or find the enrollment that exists, in one atomic statement (a trigger counts a
    new enrollment on its course). Under a concurrent first enrollment that commits after this
    statement's snapshot, ON CONFLICT waits for it and nothing comes back."""
    user, course = _user(), bindparam("course_id", type_=Enrollment.course_id.type)
    inserted = (
        insert(Enrollment)
        .values(
            id=bindparam("id"),
            user_id=user,
            course_id=course,
            status=EnrollmentStatus.ACTIVE,
            completion_percent=0,
        )
        .on_conflict_do_nothing(index_elements=[Enrollment.user_id, Enrollment.course_id])
        .returning(*ENROLLMENT_COLUMNS)
        .cte("inserted")
    )
    existing = select(*ENROLLMENT_COLUMNS).where(
        Enrollment.user_id == user,
        Enrollment.course_id == course,
        ~exists(select(inserted.c.id)),
    )
    return select(*inserted.c).union_all(existing)


@cache
def _dashboard_statement() -> AnySelect:
    """Two one-row aggregates side by side, in one round trip."""
    completed_day = func.date(func.timezone("UTC", Progress.completed_at))
    courses = (
        select(
            func.count().filter(Enrollment.status == EnrollmentStatus.ACTIVE).label("active"),
            func.count().filter(Enrollment.status == EnrollmentStatus.COMPLETED).label("done"),
        )
        .where(Enrollment.user_id == _user())
        .subquery()
    )
    lessons = (
        select(
            func.count().filter(Progress.completed.is_(True)).label("lessons"),
            func.coalesce(func.sum(Progress.time_spent_seconds), 0).label("seconds"),
            func.array_agg(func.distinct(completed_day))
            .filter(Progress.completed_at.is_not(None))
            .label("days"),
        )
        .where(Progress.user_id == _user())
        .subquery()
    )
    return select(courses, lessons).select_from(courses.join(lessons, true()))


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
    async def enroll(self, session: AsyncSession, learner: Learner, course_ref: str) -> AnyRow:
        """Enroll once. Repeats and concurrent calls all return the same enrollment. Every
        statement is atomic on its own, so this needs no transaction."""
        by_id, ref = _course_ref(course_ref)
        course = (
            await run(
                session,
                _course_access_statement(by_id),
                {"course_ref": ref, "user_id": learner.id},
            )
        ).one_or_none()
        if course is None or course.course_status is not CourseStatus.PUBLISHED:
            raise NotFound("No such course.")
        if not course.allowed:
            raise _no_access(course, course.id, "enroll in it")
        keys = {"user_id": learner.id, "course_id": course.id}
        enrollment: AnyRow | None = (
            await run(session, _enroll_statement(), {"id": uuid.uuid4(), **keys})
        ).one_or_none()
        if enrollment is None:
            # The concurrent first enrollment has committed: a new statement sees it.
            enrollment = (await run(session, _enrollment_statement(), keys)).one()
        return enrollment

    async def is_enrolled(
        self, session: AsyncSession, user_id: uuid.UUID, course_id: uuid.UUID
    ) -> bool:
        keys = {"user_id": user_id, "course_id": course_id}
        return bool((await run(session, _is_enrolled_statement(), keys)).scalar())

    async def open_lesson(
        self, session: AsyncSession, learner: Learner | None, course_ref: str, day: int
    ) -> AnyRow:
        """A lesson's full content, with the caller's progress (``progress_id`` is NULL when
        there is none): day 1 is a free preview of any published course; other days are for
        enrolled learners and admins."""
        is_admin = learner is not None and learner.role is Role.ADMIN
        by_id, ref = _course_ref(course_ref)
        row: AnyRow | None = (
            await run(
                session,
                _lesson_statement(by_id),
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
        return row

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
                _progress_statement(change.completed is not None, change.notes is not None),
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
        # Badges follow completions: award only when this request completed the lesson (a
        # repeat keeps the first completed_at, so it is not ``now``).
        if change.completed and row.completed_at == now:
            await badges.award(session, learner.id, now.date())
        return row, enrollment

    async def _recount(
        self, session: AsyncSession, learner: Learner, access: AnyRow, now: datetime
    ) -> EnrollmentState:
        """Another request changed the enrollment while this one counted: count again, from a
        newer snapshot, until no one has changed it in between."""
        keys = {"enrollment": access.target_enrollment}
        for _ in range(COMPLETION_ATTEMPTS):
            version = (await run(session, _enrollment_version_statement(), keys)).scalar_one()
            values = {
                **keys,
                "seen_version": version,
                "learner": learner.id,
                "course": access.course_id,
                "now": now,
            }
            refreshed = (await run(session, _completion_refresh_statement(), values)).one_or_none()
            if refreshed is not None:
                return EnrollmentState.prefixed(refreshed)
        # The progress is recorded and must not be reported as failed (a retry would add the
        # time again); the writes still racing recount the enrollment after this one.
        logger.warning("enrollment %s kept changing; not recounted", access.target_enrollment)
        current = (await run(session, _enrollment_by_id_statement(), keys)).one()
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
    ) -> tuple[AnyRow, list[tuple[Lesson, Progress | None]]]:
        keys = {"user_id": user_id, "course_id": course_id}
        enrollment = (await run(session, _enrollment_statement(), keys)).one_or_none()
        if enrollment is None:
            raise NotFound("You are not enrolled in this course.")
        rows = await session.execute(
            select(Lesson, Progress)
            .outerjoin(Progress, and_(Progress.lesson_id == Lesson.id, Progress.user_id == user_id))
            .where(Lesson.course_id == course_id)
            .order_by(Lesson.day_number)
        )
        return enrollment, [(lesson, progress) for lesson, progress in rows.all()]

    async def dashboard(self, session: AsyncSession, user_id: uuid.UUID, today: date) -> Dashboard:
        row = (await run(session, _dashboard_statement(), {"user_id": user_id})).one()
        return Dashboard(
            active_courses=int(row.active),
            completed_courses=int(row.done),
            lessons_completed=int(row.lessons),
            total_time_seconds=int(row.seconds),
            current_streak_days=current_streak(set(row.days or ()), today),
        )


learning = LearningService()

__all__ = [
    "Dashboard",
    "EnrollmentState",
    "Learner",
    "LearningService",
    "ProgressChange",
    "learning",
]
