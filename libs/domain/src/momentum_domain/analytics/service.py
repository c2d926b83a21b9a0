"""Analytics for learners (their own habit) and admins (the business), computed by PostgreSQL
with indexed range scans so they stay fast at year-one volume."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Date, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.catalog.models import Course
from momentum_domain.commerce.models import Payment, PaymentStatus
from momentum_domain.generation.models import CourseGenerationJob
from momentum_domain.learning.models import Enrollment, EnrollmentStatus, Progress
from momentum_domain.learning.streaks import current_streak, local_day, longest_streak
from momentum_domain.users.service import users

CHARGED = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)


def _day(column: Any) -> Any:
    return cast(func.timezone("UTC", column), Date)


@dataclass(frozen=True, slots=True)
class DateRange:
    start: date
    end: date  # inclusive

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time.min, UTC)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time.min, UTC)


# Result rows name their day ``date`` (the JSON key), so their annotations say ``dt.date``.


@dataclass(frozen=True, slots=True)
class CourseTime:
    course_id: uuid.UUID
    title: str
    time_spent_seconds: int
    lessons_completed: int


@dataclass(frozen=True, slots=True)
class DayLessons:
    date: dt.date
    lessons_completed: int


@dataclass(frozen=True, slots=True)
class LearnerAnalytics:
    total_time_seconds: int
    lessons_completed: int
    courses_completed: int
    current_streak_days: int
    longest_streak_days: int
    time_by_course: list[CourseTime]
    last_30_days: list[DayLessons]


@dataclass(frozen=True, slots=True)
class DayCount:
    date: dt.date
    count: int


@dataclass(frozen=True, slots=True)
class DayRevenue:
    date: dt.date
    currency: str
    revenue_cents: int
    refunds_cents: int
    net_cents: int


@dataclass(frozen=True, slots=True)
class CourseRevenue:
    course_id: uuid.UUID | None
    title: str | None
    currency: str
    revenue_cents: int
    refunds_cents: int
    payments: int


@dataclass(frozen=True, slots=True)
class DayGeneration:
    date: dt.date
    jobs: int
    failed: int
    cost_usd: float


@dataclass(frozen=True, slots=True)
class Overview:
    period: DateRange
    enrollments: int
    completions: int
    completion_rate: float
    enrollments_by_day: list[DayCount]
    completions_by_day: list[DayCount]
    revenue_by_day: list[DayRevenue]
    revenue_by_course: list[CourseRevenue]
    generation_by_day: list[DayGeneration]


class AnalyticsService:
    async def learner(
        self, session: AsyncSession, user_id: uuid.UUID, now: datetime
    ) -> LearnerAnalytics:
        """The learner's totals, streaks and last 30 days, in days of their time zone."""
        zone = (await users.preferences(session, user_id)).zone
        today = now.astimezone(zone).date()
        completed_day = local_day(Progress.completed_at, zone.key)
        totals = (
            await session.execute(
                select(
                    func.coalesce(func.sum(Progress.time_spent_seconds), 0),
                    func.count().filter(Progress.completed.is_(True)),
                    func.array_agg(func.distinct(completed_day)).filter(
                        Progress.completed_at.is_not(None)
                    ),
                ).where(Progress.user_id == user_id)
            )
        ).one()
        days = set(totals[2] or ())
        by_course = await session.execute(
            select(
                Course.id,
                Course.title,
                func.sum(Progress.time_spent_seconds),
                func.count().filter(Progress.completed.is_(True)),
            )
            .join(Course, Course.id == Progress.course_id)
            .where(Progress.user_id == user_id)
            .group_by(Course.id, Course.title)
            .order_by(func.sum(Progress.time_spent_seconds).desc())
        )
        completed_courses = await session.scalar(
            select(func.count()).where(
                Enrollment.user_id == user_id, Enrollment.status == EnrollmentStatus.COMPLETED
            )
        )
        window = [today - timedelta(days=n) for n in range(29, -1, -1)]
        per_day: dict[date, int] = dict(
            (
                await session.execute(
                    select(completed_day, func.count())
                    .where(
                        Progress.user_id == user_id,
                        Progress.completed_at >= datetime.combine(window[0], time.min, zone),
                    )
                    .group_by(completed_day)
                )
            ).all()
        )
        return LearnerAnalytics(
            total_time_seconds=int(totals[0]),
            lessons_completed=int(totals[1]),
            courses_completed=int(completed_courses or 0),
            current_streak_days=current_streak(days, today),
            longest_streak_days=longest_streak(days),
            time_by_course=[
                CourseTime(cid, title, int(seconds or 0), int(done))
                for cid, title, seconds, done in by_course.all()
            ],
            last_30_days=[DayLessons(d, per_day.get(d, 0)) for d in window],
        )

    async def admin_overview(self, session: AsyncSession, period: DateRange) -> Overview:
        enrolled_day = _day(Enrollment.created_at)
        enrollments = (
            await session.execute(
                select(enrolled_day, func.count())
                .where(Enrollment.created_at >= period.since, Enrollment.created_at < period.until)
                .group_by(enrolled_day)
            )
        ).all()
        completed_day = _day(Enrollment.completed_at)
        completions = (
            await session.execute(
                select(completed_day, func.count())
                .where(
                    Enrollment.completed_at >= period.since, Enrollment.completed_at < period.until
                )
                .group_by(completed_day)
            )
        ).all()
        cohort = (
            await session.execute(
                select(
                    func.count(),
                    func.count().filter(Enrollment.status == EnrollmentStatus.COMPLETED),
                ).where(Enrollment.created_at >= period.since, Enrollment.created_at < period.until)
            )
        ).one()
        paid_day = _day(Payment.created_at)
        in_period = (
            Payment.created_at >= period.since,
            Payment.created_at < period.until,
            Payment.status.in_(CHARGED),
        )
        revenue_by_day = (
            await session.execute(
                select(
                    paid_day,
                    Payment.currency,
                    func.sum(Payment.amount_cents),
                    func.sum(Payment.refunded_amount_cents),
                )
                .where(*in_period)
                .group_by(paid_day, Payment.currency)
                .order_by(paid_day)
            )
        ).all()
        revenue_by_course = (
            await session.execute(
                select(
                    Payment.course_id,
                    Course.title,
                    Payment.currency,
                    func.sum(Payment.amount_cents),
                    func.sum(Payment.refunded_amount_cents),
                    func.count(),
                )
                .outerjoin(Course, Course.id == Payment.course_id)
                .where(*in_period, Payment.course_id.is_not(None))
                .group_by(Payment.course_id, Course.title, Payment.currency)
                .order_by(func.sum(Payment.amount_cents).desc())
                .limit(50)
            )
        ).all()
        job_day = _day(CourseGenerationJob.created_at)
        generation = (
            await session.execute(
                select(
                    job_day,
                    func.count(),
                    func.count().filter(CourseGenerationJob.status == "FAILED"),
                    func.coalesce(func.sum(CourseGenerationJob.cost_usd), 0),
                )
                .where(
                    CourseGenerationJob.created_at >= period.since,
                    CourseGenerationJob.created_at < period.until,
                )
                .group_by(job_day)
                .order_by(job_day)
            )
        ).all()
        enrolled_total, completed_total = int(cohort[0]), int(cohort[1])
        return Overview(
            period=period,
            enrollments=enrolled_total,
            completions=sum(int(n) for _, n in completions),
            completion_rate=round(completed_total / enrolled_total, 4) if enrolled_total else 0.0,
            enrollments_by_day=[DayCount(d, int(n)) for d, n in sorted(enrollments)],
            completions_by_day=[DayCount(d, int(n)) for d, n in sorted(completions)],
            revenue_by_day=[
                DayRevenue(d, cur, int(gross), int(refunds), int(gross) - int(refunds))
                for d, cur, gross, refunds in revenue_by_day
            ],
            revenue_by_course=[
                CourseRevenue(cid, title, cur, int(gross), int(refunds), int(n))
                for cid, title, cur, gross, refunds, n in revenue_by_course
            ],
            generation_by_day=[
                DayGeneration(d, int(n), int(failed), float(cost))
                for d, n, failed, cost in generation
            ],
        )


analytics = AnalyticsService()
