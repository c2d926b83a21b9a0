"""The learner's day (``GET /me/today``): for each active enrollment, the lesson to read today
under the daily schedule (``learning.schedule``), what is done and what is left."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from itertools import groupby
from zoneinfo import ZoneInfo

from momentum_domain.catalog.models import CoursePacing
from momentum_domain.learning.schedule import days_open, opening_day
from momentum_domain.learning.statements import AnyRow


@dataclass(frozen=True, slots=True)
class CourseSummary:
    id: uuid.UUID
    slug: str
    title: str


@dataclass(frozen=True, slots=True)
class TodayLesson:
    id: uuid.UUID
    day: int
    title: str
    missed: bool  # opened on an earlier day and not done yet: catching up


@dataclass(frozen=True, slots=True)
class CourseToday:
    enrollment_id: uuid.UUID
    course: CourseSummary
    # The first open day not yet done (a missed one before today's); None when every open day
    # is done: then ``next_opens_on`` says when the next one opens.
    lesson: TodayLesson | None
    days_done: int
    days_left: int
    days_open: int
    next_opens_on: date | None


@dataclass(frozen=True, slots=True)
class Today:
    date: date  # today in the learner's time zone
    time_zone: str
    current_streak_days: int
    courses: list[CourseToday]


def courses_today(rows: Sequence[AnyRow], now: datetime, zone: ZoneInfo) -> list[CourseToday]:
    """From ``today_statement``'s rows (one per lesson, grouped by enrollment)."""
    return [
        _course_today(list(lessons), now, zone)
        for _, lessons in groupby(rows, key=lambda row: row.enrollment_id)
    ]


def _course_today(lessons: list[AnyRow], now: datetime, zone: ZoneInfo) -> CourseToday:
    first = lessons[0]
    opened = (
        len(lessons)
        if first.pacing is CoursePacing.SELF_PACED
        else days_open(first.enrolled_at, now, zone)
    )
    today = now.astimezone(zone).date()
    pending = [row for row in lessons if not row.completed and row.day_number <= opened]
    lesson = pending[0] if pending else None
    locked = [row.day_number for row in lessons if row.day_number > opened]
    done = sum(1 for row in lessons if row.completed)
    return CourseToday(
        enrollment_id=first.enrollment_id,
        course=CourseSummary(first.course_id, first.slug, first.course_title),
        lesson=TodayLesson(
            lesson.lesson_id,
            lesson.day_number,
            lesson.title,
            missed=opening_day(first.enrolled_at, lesson.day_number, zone) < today,
        )
        if lesson
        else None,
        days_done=done,
        days_left=len(lessons) - done,
        days_open=min(opened, len(lessons)),
        next_opens_on=opening_day(first.enrolled_at, locked[0], zone) if locked else None,
    )
