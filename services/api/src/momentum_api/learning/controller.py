"""A learner's own enrollments, progress and dashboard. Everything here is scoped to the
caller: there is no way to name another learner."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Controller, Request, get, put
from litestar.params import FromPath, JSONBody, PathParameter

from momentum_api.deps import AutocommitSession
from momentum_api.identity.guards import authenticated
from momentum_api.identity.principal import Principal
from momentum_api.learning.schemas import (
    CourseProgress,
    DashboardOut,
    EnrollmentOut,
    LessonProgress,
    MyEnrollment,
    ProgressIn,
    ProgressOut,
    ProgressResult,
)
from momentum_domain.learning.models import Enrollment
from momentum_domain.learning.service import EnrollmentState, ProgressChange, learning
from momentum_domain.learning.statements import AnyRow
from momentum_domain.learning.today import Today

CourseRef = Annotated[str, PathParameter(max_length=200, description="Course id or slug")]


def enrollment_out(enrollment: Enrollment | EnrollmentState) -> EnrollmentOut:
    return EnrollmentOut(
        id=enrollment.id,
        course_id=enrollment.course_id,
        status=enrollment.status,
        completion_percent=enrollment.completion_percent,
        enrolled_at=enrollment.created_at,
        completed_at=enrollment.completed_at,
    )


def progress_out(progress: AnyRow) -> ProgressOut:
    return ProgressOut(
        lesson_id=progress.lesson_id,
        completed=progress.completed,
        completed_at=progress.completed_at,
        time_spent_seconds=progress.time_spent_seconds,
        notes=progress.notes,
    )


class LearningController(Controller):
    path = "/me"
    tags = ["Learning"]
    guards = [authenticated]
    security = [{"BearerToken": []}]

    @put("/enrollments/{course_ref:str}", operation_id="enroll", summary="Enroll in a course")
    async def enroll(
        self,
        request: Request[Principal, Any, Any],
        autocommit_session: AutocommitSession,
        course_ref: CourseRef,
    ) -> EnrollmentOut:
        """Idempotent: repeating it, even concurrently, returns the same enrollment."""
        enrollment = await learning.enroll(
            autocommit_session, request.user.as_learner(), course_ref
        )
        return enrollment_out(enrollment)

    @get("/enrollments", operation_id="listMyEnrollments", summary="My enrollments")
    async def my_enrollments(
        self, request: Request[Principal, Any, Any], autocommit_session: AutocommitSession
    ) -> list[MyEnrollment]:
        rows = await learning.my_enrollments(autocommit_session, request.user.id)
        return [
            MyEnrollment(
                **msgspec_fields(enrollment_out(enrollment)),
                course_slug=course.slug,
                course_title=course.title,
                duration_days=course.duration_days,
                last_accessed_at=enrollment.last_accessed_at,
            )
            for enrollment, course in rows
        ]

    @get(
        "/enrollments/{course_id:uuid}",
        operation_id="getMyCourseProgress",
        summary="My progress in one course",
    )
    async def course_progress(
        self,
        request: Request[Principal, Any, Any],
        autocommit_session: AutocommitSession,
        course_id: FromPath[uuid.UUID],
    ) -> CourseProgress:
        enrollment, rows = await learning.course_progress(
            autocommit_session, request.user.id, course_id
        )
        return CourseProgress(
            enrollment=enrollment_out(enrollment),
            lessons=[
                LessonProgress(
                    lesson_id=lesson.id,
                    day=lesson.day_number,
                    title=lesson.title,
                    completed=bool(progress and progress.completed),
                    completed_at=progress.completed_at if progress else None,
                    time_spent_seconds=progress.time_spent_seconds if progress else 0,
                    notes=progress.notes if progress else None,
                )
                for lesson, progress in rows
            ],
        )

    @put(
        "/progress/{lesson_id:uuid}",
        operation_id="recordProgress",
        summary="Complete a lesson, add time, save notes",
    )
    async def record_progress(
        self,
        request: Request[Principal, Any, Any],
        autocommit_session: AutocommitSession,
        lesson_id: FromPath[uuid.UUID],
        data: JSONBody[ProgressIn],
    ) -> ProgressResult:
        """An upsert: repeating it never duplicates. Omitted fields keep their values; time is
        added. When every lesson is complete the enrollment becomes COMPLETED."""
        progress, enrollment = await learning.record_progress(
            autocommit_session,
            request.user.as_learner(),
            lesson_id,
            ProgressChange(data.completed, data.add_time_seconds, data.notes),
        )
        return ProgressResult(progress_out(progress), enrollment_out(enrollment))

    @get("/dashboard", operation_id="getMyDashboard", summary="My learning at a glance")
    async def dashboard(
        self, request: Request[Principal, Any, Any], autocommit_session: AutocommitSession
    ) -> DashboardOut:
        board = await learning.dashboard(autocommit_session, request.user.id, datetime.now(UTC))
        return DashboardOut(
            active_courses=board.active_courses,
            completed_courses=board.completed_courses,
            lessons_completed=board.lessons_completed,
            total_time_seconds=board.total_time_seconds,
            current_streak_days=board.current_streak_days,
        )

    @get("/today", operation_id="getToday", summary="Today's lesson in each of my courses")
    async def today(
        self, request: Request[Principal, Any, Any], autocommit_session: AutocommitSession
    ) -> Today:
        """Per active enrollment: the first day the daily schedule has opened and the learner
        has not done (a missed day before today's), the days done and left, when the next day
        opens; and the learner's streak. Days are the learner's time zone's."""
        return await learning.today(autocommit_session, request.user.id, datetime.now(UTC))


def msgspec_fields(struct: Any) -> dict[str, Any]:
    return {name: getattr(struct, name) for name in struct.__struct_fields__}
