"""The daily schedule: a daily course (``Course.pacing``, the default) opens one lesson a day;
a self-paced course opens every day on enrollment.

The rule: day N opens at midnight of the (N-1)th local calendar day after the enrollment's local
date, in the learner's time zone (their profile's); day 1 opens on the enrollment day itself. A
learner may catch up on any day already opened (nothing closes again) but may not run ahead.
Day 1 stays a free preview for everyone, admins open any day, and premium members open every day
when ``schedule_premium_unlocks_all`` says so. Counting calendar days rather than 24-hour spans
means a learner who enrolls at 23:00 reads day 2 an hour later, the next morning's date, as a
daily habit expects, and a DST change never shifts a day."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def opening_day(enrolled_at: datetime, day: int, zone: ZoneInfo) -> date:
    """The local calendar day on which ``day`` opens."""
    return enrolled_at.astimezone(zone).date() + timedelta(days=day - 1)


def opening_time(enrolled_at: datetime, day: int, zone: ZoneInfo) -> datetime:
    """The instant ``day`` opens: the start of its local calendar day."""
    return datetime.combine(opening_day(enrolled_at, day, zone), time(), tzinfo=zone)


def days_open(enrolled_at: datetime, now: datetime, zone: ZoneInfo) -> int:
    """How many days are open at ``now`` (at least 1: day 1 opens at enrollment)."""
    return max((now.astimezone(zone).date() - enrolled_at.astimezone(zone).date()).days + 1, 1)
