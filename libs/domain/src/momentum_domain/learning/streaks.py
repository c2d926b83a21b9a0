"""Daily streaks: the heart of a daily-lesson habit."""

from __future__ import annotations

from datetime import date, timedelta


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
