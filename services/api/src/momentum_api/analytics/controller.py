"""Analytics: a learner's own, and the business's for admins."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
from litestar import Controller, Request, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery

from momentum_api.deps import DbSession
from momentum_api.identity.guards import admin, authenticated
from momentum_api.identity.principal import Principal
from momentum_domain.analytics.service import (
    CourseRevenue,
    DateRange,
    DayCount,
    DayGeneration,
    DayRevenue,
    LearnerAnalytics,
    analytics,
)
from momentum_domain.errors import Unprocessable

MAX_RANGE_DAYS = 366
# Beyond these a date is a typo or a probe, and arithmetic near the calendar's ends overflows.
EARLIEST, LATEST = date(2000, 1, 1), date(2999, 12, 31)


class OverviewOut(msgspec.Struct):
    start: date = msgspec.field(name="from")
    end: date = msgspec.field(name="to")
    enrollments: int
    completions: int
    completion_rate: float
    enrollments_by_day: list[DayCount]
    completions_by_day: list[DayCount]
    revenue_by_day: list[DayRevenue]
    revenue_by_course: list[CourseRevenue]
    generation_by_day: list[DayGeneration]


class LearnerAnalyticsController(Controller):
    path = "/me/analytics"
    tags = ["Learning"]
    guards = [authenticated]
    security = [{"BearerToken": []}]

    @get("/", operation_id="getMyAnalytics", summary="My time, completions and streaks")
    async def mine(
        self, request: Request[Principal, Any, Any], db_session: DbSession
    ) -> LearnerAnalytics:
        return await analytics.learner(db_session, request.user.id, datetime.now(UTC))


class AdminAnalyticsController(Controller):
    path = "/admin/analytics"
    tags = ["Admin: analytics"]
    guards = [admin]
    security = [{"BearerToken": []}]

    @get(
        "/",
        operation_id="adminGetAnalytics",
        summary="Enrollments, completions, revenue, generation",
        responses={
            422: ResponseSpec(
                None, description="A date outside 2000-2999, start after end, or too long a range"
            )
        },
    )
    async def overview(
        self,
        db_session: DbSession,
        start: FromQuery[date | None] = None,
        end: FromQuery[date | None] = None,
    ) -> OverviewOut:
        """Daily figures between `start` and `end` (inclusive; default: the last 30 days),
        both between 2000-01-01 and 2999-12-31."""
        for name, value in (("start", start), ("end", end)):
            if value is not None and not EARLIEST <= value <= LATEST:
                raise Unprocessable(f"`{name}` must be between {EARLIEST} and {LATEST}.")
        end = end or datetime.now(UTC).date()
        start = start or end - timedelta(days=29)
        if start > end:
            raise Unprocessable("`start` must not be after `end`.")
        if (end - start).days >= MAX_RANGE_DAYS:
            raise Unprocessable(f"The range is limited to {MAX_RANGE_DAYS} days.")
        overview = await analytics.admin_overview(db_session, DateRange(start, end))
        return OverviewOut(
            start=overview.period.start,
            end=overview.period.end,
            enrollments=overview.enrollments,
            completions=overview.completions,
            completion_rate=overview.completion_rate,
            enrollments_by_day=overview.enrollments_by_day,
            completions_by_day=overview.completions_by_day,
            revenue_by_day=overview.revenue_by_day,
            revenue_by_course=overview.revenue_by_course,
            generation_by_day=overview.generation_by_day,
        )
