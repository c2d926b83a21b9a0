from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from momentum_api.schemas import Strict
from momentum_domain.learning.models import EnrollmentStatus


class EnrollmentOut(msgspec.Struct):
    id: uuid.UUID
    course_id: uuid.UUID
    status: EnrollmentStatus
    completion_percent: int
    enrolled_at: datetime
    completed_at: datetime | None


class MyEnrollment(EnrollmentOut, kw_only=True):
    course_slug: str
    course_title: str
    duration_days: int
    last_accessed_at: datetime | None


class ProgressIn(Strict):
    completed: bool | None = None
    add_time_seconds: Annotated[int, msgspec.Meta(ge=0, le=86_400)] = 0
    notes: Annotated[str, msgspec.Meta(max_length=20_000)] | None = None


class ProgressOut(msgspec.Struct):
    lesson_id: uuid.UUID
    completed: bool
    completed_at: datetime | None
    time_spent_seconds: int
    notes: str | None


class ProgressResult(msgspec.Struct):
    progress: ProgressOut
    enrollment: EnrollmentOut


class LessonProgress(msgspec.Struct):
    lesson_id: uuid.UUID
    day: int
    title: str
    completed: bool
    completed_at: datetime | None
    time_spent_seconds: int
    notes: str | None


class CourseProgress(msgspec.Struct):
    enrollment: EnrollmentOut
    lessons: list[LessonProgress]


class DashboardOut(msgspec.Struct):
    active_courses: int
    completed_courses: int
    lessons_completed: int
    total_time_seconds: int
    current_streak_days: int
