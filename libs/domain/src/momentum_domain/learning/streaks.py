"""Daily streaks: the heart of a daily-lesson habit. A day is a calendar day in the learner's
time zone (their profile's), so a lesson done at 8 in the morning in Auckland counts for that
morning's day, not for the UTC day before."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import BindParameter, Date, String, bindparam, cast, func


def zone_parameter() -> BindParameter[str]:
    """The learner's IANA zone, bound as ``zone`` when a prebuilt statement runs."""
    return bindparam("zone", type_=String)


def local_day(timestamp: Any, zone: str | BindParameter[str]) -> Any:
    """The calendar day, in ``zone``, of a ``timestamptz`` column."""
    return cast(func.timezone(zone, timestamp), Date)


def current_streak(days: set[date], today: date) -> int:
    """Consecutive days with a completed lesson, ending today (or yesterday: today's lesson may
    still be ahead)."""
    day = today if today in days else today - timedelta(days=1)
    streak = 0
    while day in days:
        streak += 1
        day -= timedelta(days=1)
    return streak


def longest_streak(days: set[date]) -> int:
    best = 0
    for day in days:
        if day - timedelta(days=1) in days:
            continue  # not the start of a run
        length = 1
        while day + timedelta(days=length) in days:
            length += 1
        best = max(best, length)
    return best
