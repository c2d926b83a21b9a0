"""Enrollment, lesson access and progress: the learner's side of a course."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.catalog.models import Course, CourseStatus, Lesson
from momentum_domain.catalog.service import catalog
from momentum_domain.community.service import badges
from momentum_domain.errors import Forbidden, NotFound, Unauthorized
from momentum_domain.learning.entitlements import may_open_course
from momentum_domain.learning.models import Enrollment, EnrollmentStatus, Progress
from momentum_domain.learning.streaks import current_streak
from momentum_domain.users.models import Role

FREE_PREVIEW_DAY = 1


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
class Dashboard:
    active_courses: int
    completed_courses: int
    lessons_completed: int
    total_time_seconds: int
    current_streak_days: int


class LearningService:
    async def enroll(self, session: AsyncSession, learner: Learner, course_ref: str) -> Enrollment:
        """Enroll once. Repeats and concurrent calls all return the same enrollment."""
        course = await catalog.get_course(session, course_ref)
        if not await may_open_course(session, user_id=learner.id, role=learner.role, course=course):
            raise Forbidden(
                "This course is for premium members or buyers.",
                extra={"course_id": str(course.id), "premium": course.is_premium},
            )
        inserted = await session.scalar(
            insert(Enrollment)
            .values(
                id=uuid.uuid4(),
                user_id=learner.id,
                course_id=course.id,
                status=EnrollmentStatus.ACTIVE,
                completion_percent=0,
            )
            .on_conflict_do_nothing(index_elements=[Enrollment.user_id, Enrollment.course_id])
            .returning(Enrollment.id)
        )
        if inserted is not None:
            await catalog.bump_enrollment_count(session, course.id)
        enrollment = await session.scalar(
            select(Enrollment).where(
                Enrollment.user_id == learner.id, Enrollment.course_id == course.id
            )
        )
        assert enrollment is not None
        return enrollment

    async def enrollment(
        self, session: AsyncSession, user_id: uuid.UUID, course_id: uuid.UUID
    ) -> Enrollment | None:
        return await session.scalar(
            select(Enrollment).where(
                Enrollment.user_id == user_id, Enrollment.course_id == course_id
            )
        )

    async def open_lesson(
        self, session: AsyncSession, learner: Learner | None, course_ref: str, day: int
    ) -> tuple[Course, Lesson, Progress | None]:
        """A lesson's full content: day 1 is a free preview of any published course; other days
        are for enrolled learners and admins."""
        is_admin = learner is not None and learner.role is Role.ADMIN
        course = await catalog.get_course(session, course_ref, include_unpublished=is_admin)
        lesson = await catalog.get_lesson(session, course.id, day)
        progress = None
        if learner is not None:
            progress = await session.scalar(
                select(Progress).where(
                    Progress.user_id == learner.id, Progress.lesson_id == lesson.id
                )
            )
        if day == FREE_PREVIEW_DAY or is_admin:
            return course, lesson, progress
        if learner is None:
            raise Unauthorized("Sign in and enroll in this course to read this lesson.")
        if await self.enrollment(session, learner.id, course.id) is None:
            raise Forbidden("Enroll in this course to read this lesson.")
        await self._check_access(session, learner, course)
        return course, lesson, progress

    async def record_progress(
        self, session: AsyncSession, learner: Learner, lesson_id: uuid.UUID, change: ProgressChange
    ) -> tuple[Progress, Enrollment]:
        lesson = await session.get(Lesson, lesson_id)
        course = await session.get(Course, lesson.course_id) if lesson else None
        if lesson is None or course is None or course.status is not CourseStatus.PUBLISHED:
            raise NotFound("No such lesson.")
        # Locking the enrollment serialises one learner's writes to one course, so the
        # completion count below always sees the lessons completed by concurrent requests.
        enrollment = await session.scalar(
            select(Enrollment)
            .where(Enrollment.user_id == learner.id, Enrollment.course_id == course.id)
            .with_for_update()
        )
        if enrollment is None:
            raise Forbidden("Enroll in this course to record progress.")
        await self._check_access(session, learner, course)

        now = datetime.now(UTC)
        values: dict[str, Any] = {
            "id": uuid.uuid4(),
            "user_id": learner.id,
            "lesson_id": lesson.id,
            "course_id": course.id,
            "completed": bool(change.completed),
            "completed_at": now if change.completed else None,
            "time_spent_seconds": change.add_time_seconds,
            "notes": change.notes,
        }
        stmt = insert(Progress).values(**values)
        excluded = stmt.excluded
        updates: dict[str, Any] = {
            "time_spent_seconds": Progress.time_spent_seconds + excluded.time_spent_seconds
        }
        if change.completed is not None:
            updates["completed"] = excluded.completed
            # Keep the first completion time when a completed lesson is completed again.
            updates["completed_at"] = case(
                (excluded.completed.is_(False), None),
                else_=func.coalesce(Progress.completed_at, excluded.completed_at),
            )
        if change.notes is not None:
            updates["notes"] = excluded.notes
        progress = await session.scalar(
            stmt.on_conflict_do_update(
                index_elements=[Progress.user_id, Progress.lesson_id], set_=updates
            )
            .returning(Progress)
            .execution_options(populate_existing=True)
        )
        assert progress is not None
        await self._refresh_completion(session, enrollment, now)
        # Badges follow completions: award only when this request completed the lesson (a
        # repeat keeps the first completed_at, so it is not ``now``).
        if change.completed and progress.completed_at == now:
            await badges.award(session, learner.id, now.date())
        return progress, enrollment

    async def _check_access(self, session: AsyncSession, learner: Learner, course: Course) -> None:
        """An enrollment outlives the entitlement behind it (a refund, an ended subscription):
        access is decided again on every visit."""
        if not await may_open_course(session, user_id=learner.id, role=learner.role, course=course):
            raise Forbidden(
                "Your access to this course has ended.", extra={"course_id": str(course.id)}
            )

    async def _refresh_completion(
        self, session: AsyncSession, enrollment: Enrollment, now: datetime
    ) -> None:
        total, done = (
            await session.execute(
                select(
                    select(func.count())
                    .where(Lesson.course_id == enrollment.course_id)
                    .scalar_subquery(),
                    select(func.count())
                    .where(
                        Progress.user_id == enrollment.user_id,
                        Progress.course_id == enrollment.course_id,
                        Progress.completed.is_(True),
                    )
                    .scalar_subquery(),
                )
            )
        ).one()
        percent = round(100 * done / total) if total else 0
        enrollment.completion_percent = percent
        enrollment.last_accessed_at = now
        if total and done >= total:
            if enrollment.status is not EnrollmentStatus.COMPLETED:
                enrollment.status = EnrollmentStatus.COMPLETED
                enrollment.completed_at = now
        elif enrollment.status is EnrollmentStatus.COMPLETED:
            enrollment.status = EnrollmentStatus.ACTIVE
            enrollment.completed_at = None
        await session.flush()

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
    ) -> tuple[Enrollment, list[tuple[Lesson, Progress | None]]]:
        enrollment = await self.enrollment(session, user_id, course_id)
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
        enrollments = (
            await session.execute(
                select(
                    func.count().filter(Enrollment.status == EnrollmentStatus.ACTIVE),
                    func.count().filter(Enrollment.status == EnrollmentStatus.COMPLETED),
                ).where(Enrollment.user_id == user_id)
            )
        ).one()
        completed_day = func.date(func.timezone("UTC", Progress.completed_at))
        totals = (
            await session.execute(
                select(
                    func.count().filter(Progress.completed.is_(True)),
                    func.coalesce(func.sum(Progress.time_spent_seconds), 0),
                    func.array_agg(func.distinct(completed_day)).filter(
                        Progress.completed_at.is_not(None)
                    ),
                ).where(Progress.user_id == user_id)
            )
        ).one()
        return Dashboard(
            active_courses=int(enrollments[0]),
            completed_courses=int(enrollments[1]),
            lessons_completed=int(totals[0]),
            total_time_seconds=int(totals[1]),
            current_streak_days=current_streak(set(totals[2] or ()), today),
        )


learning = LearningService()

__all__ = ["Dashboard", "Learner", "LearningService", "ProgressChange", "learning"]
