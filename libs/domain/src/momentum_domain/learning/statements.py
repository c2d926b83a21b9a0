"""The statements behind learning's hot paths. Each reads (or writes) what one use case needs in
one Core statement: the lesson, the course, the caller's enrollment and progress, and the facts
the entitlement rule needs, together. They are built once (``functools.cache``) and run with
bound parameters (``momentum_domain.kit.db.run``)."""

from __future__ import annotations

import uuid
from datetime import datetime
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
    false,
    func,
    literal_column,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert

from momentum_domain.catalog.models import Course, CourseStatus, Lesson
from momentum_domain.commerce.entitlements import may_open
from momentum_domain.learning.models import Enrollment, EnrollmentStatus, Progress
from momentum_domain.learning.streaks import local_day, zone_parameter

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
def lesson_statement(by_id: bool) -> AnySelect:
    """A course's lesson for a day, with the caller's enrollment and progress and the
    entitlement facts; the rows that are missing come back as NULLs."""
    user = _user()
    return (
        select(
            Course.id.label("course_id"),
            *_access_columns(user),
            Enrollment.id.is_not(None).label("enrolled"),
            Enrollment.created_at.label("enrolled_at"),
            Course.pacing,
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


@cache
def progress_statement(sets_completed: bool, sets_notes: bool) -> AnySelect:
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
def completion_refresh_statement() -> Any:
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
def enrollment_by_id_statement() -> AnySelect:
    return select(*ENROLLMENT_COLUMNS).where(Enrollment.id == bindparam("enrollment"))


@cache
def enrollment_version_statement() -> AnySelect:
    return select(ENROLLMENT_VERSION).where(Enrollment.id == bindparam("enrollment"))


def _user() -> BindParameter[uuid.UUID]:
    return bindparam("user_id", type_=Enrollment.user_id.type)


@cache
def course_access_statement(by_id: bool) -> AnySelect:
    return select(Course.id, *_access_columns(_user())).where(_names_course(by_id))


@cache
def enrollment_statement() -> AnySelect:
    return select(*ENROLLMENT_COLUMNS).where(
        Enrollment.user_id == _user(), Enrollment.course_id == bindparam("course_id")
    )


@cache
def is_enrolled_statement() -> AnySelect:
    return select(
        exists().where(
            Enrollment.user_id == _user(), Enrollment.course_id == bindparam("course_id")
        )
    )


@cache
def enroll_statement() -> Executable:
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
def dashboard_statement() -> AnySelect:
    """Two one-row aggregates side by side, in one round trip; days are the learner's
    (``zone``)."""
    completed_day = local_day(Progress.completed_at, zone_parameter())
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


@cache
def today_statement() -> AnySelect:
    """Each lesson of the learner's active enrollments, with whether they completed it, in
    enrollment then day order."""
    return (
        select(
            Enrollment.id.label("enrollment_id"),
            Enrollment.created_at.label("enrolled_at"),
            Course.id.label("course_id"),
            Course.slug,
            Course.title.label("course_title"),
            Course.pacing,
            Lesson.id.label("lesson_id"),
            Lesson.day_number,
            Lesson.title,
            func.coalesce(Progress.completed, false()).label("completed"),
        )
        .select_from(Enrollment)
        .join(Course, Course.id == Enrollment.course_id)
        .join(Lesson, Lesson.course_id == Course.id)
        .outerjoin(Progress, and_(Progress.lesson_id == Lesson.id, Progress.user_id == _user()))
        .where(Enrollment.user_id == _user(), Enrollment.status == EnrollmentStatus.ACTIVE)
        .order_by(Enrollment.created_at, Enrollment.id, Lesson.day_number)
    )
