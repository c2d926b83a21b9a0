"""Load the first-year volumes of the architecture's sizing table into PostgreSQL with bulk COPY.

    python bench/load_year_one.py [--data-dir .momentum/bench]

Without MOMENTUM_DATABASE_URL / MOMENTUM_REDIS_URL it starts the embedded PostgreSQL and Redis
with their data in ``--data-dir``, migrates, loads, and stops them again. The load is one
transaction that ends by writing a marker row in the ``bench`` schema (outside the application's
tables), so it happens once: later runs find the marker and reuse the data, and an interrupted load
leaves nothing behind. Delete the data folder to load afresh.

The rows come from a fixed random seed; timestamps are relative to the moment of loading, so
daily streaks end today.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import itertools
import json
import random
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from year_one_vocabulary import (
    ACTION_ITEMS,
    BADGES,
    CATEGORIES,
    DESCRIPTION_SENTENCES,
    FIRST_NAMES,
    LAST_NAMES,
    LESSON_SENTENCES,
    LESSON_THEMES,
    TITLE_PATTERNS,
    CategoryWords,
)

from momentum_dev.embedded import embedded_stack
from momentum_domain.config import REPO_ROOT, Settings
from momentum_domain.migrations import upgrade

DEFAULT_DATA_DIR = REPO_ROOT / ".momentum" / "bench"
DATASET = "year-one-v1"
SEED = 20_260_101

# The year-one column of the sizing table (../shared/seeds/): the upper end of each range.
VOLUMES = {
    "users": 50_000,
    "categories": 50,
    "courses": 500,
    "lessons": 10_000,
    "enrollments": 200_000,
    "progress": 2_800_000,
    "payments": 50_000,
    "user_badges": 750_000,
}
# 500 courses of 7, 14 or 21 days average 20 days, and 10,000 is not a multiple of 7, so no mix of
# complete courses has exactly 10,000 lessons: this mix has 10,003 lesson days, and one 21-day
# DRAFT is still being written (18 lessons), which makes exactly 10,000.
DURATION_MIX = {21: 440, 14: 49, 7: 11}
UNFINISHED_DRAFT_LESSONS = 18
STATUS_MIX = {"PUBLISHED": 440, "DRAFT": 40, "ARCHIVED": 20}
ADMINS = 10
PREMIUM_SHARE = 0.12
PAID_PRICES_CENTS = (900, 1900, 2900, 4900)
SUBSCRIPTION_CENTS = 1299
MAX_ENROLLMENTS_PER_USER = 40
# Timestamps are PostgreSQL's binary value: microseconds since 2000-01-01 UTC (see _load).
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
SECOND = 1_000_000
DAY = 86_400 * SECOND
# Tables nothing else references: their indexes and foreign keys are dropped before the COPY and
# rebuilt after it (see _drop_indexes).
DEFERRED_INDEX_TABLES = frozenset({"enrollments", "progress", "payments", "user_badges"})
LOADED_TABLES = (
    "categories", "users", "badges", "courses", "lessons",
    "enrollments", "progress", "payments", "user_badges",
)  # fmt: skip


@dataclass(frozen=True)
class TableLoad:
    name: str
    columns: tuple[str, ...]
    rows: Callable[[], Iterable[tuple[Any, ...]]]


@dataclass
class PlannedCourse:
    id: str
    category: CategoryWords
    topic: str
    title: str
    duration: int
    status: str
    pricing: str  # "free", "premium" or "paid"
    price_cents: int
    published_days_ago: int
    lessons_written: int
    enrollment_count: int = 0


@dataclass
class PlannedEnrollment:
    user: int
    course: int
    lessons_touched: int  # progress rows, for days 1..lessons_touched
    last_completed: bool = False
    last_days_ago: int = 0
    # Days between consecutive lessons: mostly 1, so daily streaks exist.
    gaps: bytes = b""
    cancelled: bool = False

    @property
    def first_days_ago(self) -> int:
        return self.last_days_ago + sum(self.gaps)


def _slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _fit_total(
    counts: list[int], target: int, low: int, highs: list[int], rng: random.Random
) -> None:
    """Nudge random entries of ``counts`` by one, within ``low..highs[i]``, until they sum to
    ``target``: exact volumes that keep the drawn distribution's shape."""
    missing = target - sum(counts)
    step = 1 if missing > 0 else -1
    while missing:
        i = rng.randrange(len(counts))
        if low <= counts[i] + step <= highs[i]:
            counts[i] += step
            missing -= step


class YearOne:
    """Plans the whole data set up front (ids, who enrolls where, how far each learner got), so
    that aggregates such as enrollment counts are known before the rows that carry them are
    written, then yields each table's rows."""

    def __init__(
        self, seed: int, now: datetime, categories: dict[str, str], badges: dict[str, str]
    ) -> None:
        """``categories`` and ``badges`` are the rows migrations already seeded (slug or code to
        id): they are reused, not inserted again."""
        self.rng = random.Random(seed)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        self.micros_into_today = (now - midnight) // MICROSECOND
        # Every timestamp lies within the last ~430 days.
        self.midnights = [(midnight - PG_EPOCH) // MICROSECOND - d * DAY for d in range(500)]
        self.category_ids = {slug: categories.get(slug) or self._uuid() for slug, *_ in CATEGORIES}
        self.existing_categories = set(categories)
        self.existing_badges = set(badges)
        self.badge_ids = [badges.get(code) or self._uuid() for code, *_ in BADGES]
        self._plan_users()
        self._plan_courses()
        self._plan_enrollments()
        self._plan_payments()
        self._plan_badges()

    def _uuid(self) -> str:
        # Strings: asyncpg encodes them faster than uuid.UUID objects.
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _at(self, days_ago: float) -> int:
        """A moment on the calendar day ``days_ago`` days before today, never in the future, as
        a PostgreSQL timestamp (see _load)."""
        day = int(days_ago)
        span = self.micros_into_today if day == 0 else DAY
        return self.midnights[day] + int(self.rng.random() * span)

    # Planning

    def _plan_users(self) -> None:
        rng = self.rng
        self.user_ids = [self._uuid() for _ in range(VOLUMES["users"])]
        self.user_roles = [
            "ADMIN" if i < ADMINS else "PREMIUM" if rng.random() < PREMIUM_SHARE else "FREE"
            for i in range(VOLUMES["users"])
        ]

    def _plan_courses(self) -> None:
        rng = self.rng
        durations = [d for d, count in DURATION_MIX.items() for _ in range(count)]
        statuses = [s for s, count in STATUS_MIX.items() for _ in range(count)]
        rng.shuffle(durations)
        rng.shuffle(statuses)
        # The unfinished draft: the first 21-day course, made a DRAFT (swapping statuses keeps
        # the status mix).
        unfinished = durations.index(21)
        draft = statuses.index("DRAFT")
        statuses[unfinished], statuses[draft] = statuses[draft], statuses[unfinished]
        topics = [(c, topic) for c in CATEGORIES for topic in c.topics]
        titles = rng.sample(list(itertools.product(topics, TITLE_PATTERNS)), VOLUMES["courses"])
        self.courses: list[PlannedCourse] = []
        for i, ((category, topic), pattern) in enumerate(titles):
            pricing = rng.choices(("free", "premium", "paid"), weights=(55, 30, 15))[0]
            self.courses.append(
                PlannedCourse(
                    id=self._uuid(),
                    category=category,
                    topic=topic,
                    title=pattern.format(topic=topic, days=durations[i]),
                    duration=durations[i],
                    status=statuses[i],
                    pricing=pricing,
                    price_cents=rng.choice(PAID_PRICES_CENTS) if pricing == "paid" else 0,
                    published_days_ago=rng.randint(45, 400),
                    lessons_written=UNFINISHED_DRAFT_LESSONS if i == unfinished else durations[i],
                )
            )
        assert sum(c.lessons_written for c in self.courses) == VOLUMES["lessons"]
        assert len({_slugify(c.title) for c in self.courses}) == VOLUMES["courses"]
        self.lesson_ids = [[self._uuid() for _ in range(c.lessons_written)] for c in self.courses]

    def _plan_enrollments(self) -> None:
        rng = self.rng
        # Popularity is long-tailed; archived courses were enrolled in before they were retired,
        # and a price tag halves a course's appeal.
        enrollable = [i for i, c in enumerate(self.courses) if c.status != "DRAFT"]
        ranks = rng.sample(range(len(enrollable)), len(enrollable))
        weights = {
            course: (0.5 if self.courses[course].status == "ARCHIVED" else 1.0)
            * (0.5 if self.courses[course].pricing == "paid" else 1.0)
            / (rank + 8) ** 1.05
            for course, rank in zip(enrollable, ranks, strict=True)
        }
        # Free users may take free and paid (bought) courses; premium users and admins all.
        open_to_free = [i for i in enrollable if self.courses[i].pricing != "premium"]
        pools = {
            role: (pool, list(itertools.accumulate(weights[i] for i in pool)))
            for role, pool in (("FREE", open_to_free), ("PREMIUM", enrollable))
        }
        pools["ADMIN"] = pools["PREMIUM"]

        per_user = [int(rng.expovariate(1 / 4)) for _ in self.user_ids]
        caps = [min(MAX_ENROLLMENTS_PER_USER, len(pools[role][0])) for role in self.user_roles]
        per_user = [min(k, cap) for k, cap in zip(per_user, caps, strict=True)]
        _fit_total(per_user, VOLUMES["enrollments"], 0, caps, rng)

        self.enrollments: list[PlannedEnrollment] = []
        for user, count in enumerate(per_user):
            pool, cumulative = pools[self.user_roles[user]]
            chosen: set[int] = set()
            while len(chosen) < count:
                chosen.update(rng.choices(pool, cum_weights=cumulative, k=count - len(chosen)))
            for course in sorted(chosen):
                duration = self.courses[course].duration
                # About a third finish every lesson; the rest stop somewhere along the way.
                touched = duration if rng.random() < 0.35 else rng.randint(1, duration)
                self.enrollments.append(PlannedEnrollment(user, course, touched))

        lessons_touched = [e.lessons_touched for e in self.enrollments]
        highs = [self.courses[e.course].duration for e in self.enrollments]
        _fit_total(lessons_touched, VOLUMES["progress"], 1, highs, rng)
        for enrollment, count in zip(self.enrollments, lessons_touched, strict=True):
            self._plan_timeline(enrollment, count)
            self.courses[enrollment.course].enrollment_count += 1

        # Users signed up before their first enrollment (a day before its first lesson).
        first_activity = [rng.uniform(0, 365) for _ in self.user_ids]
        for e in self.enrollments:
            first_activity[e.user] = max(first_activity[e.user], e.first_days_ago + 2)
        self.user_created_days_ago = [d + rng.uniform(0, 5) for d in first_activity]

    def _plan_timeline(self, enrollment: PlannedEnrollment, touched: int) -> None:
        rng = self.rng
        course = self.courses[enrollment.course]
        enrollment.lessons_touched = touched
        enrollment.gaps = bytes(
            1 if rng.random() < 0.8 else rng.randint(2, 4)
            for _ in range(enrollment.lessons_touched - 1)
        )
        if sum(enrollment.gaps) > course.published_days_ago - 2:
            # A course published recently: no time for skipped days (its minimum age is 45).
            enrollment.gaps = bytes(len(enrollment.gaps) * [1])
        span = sum(enrollment.gaps)
        finished_all = enrollment.lessons_touched == course.duration
        enrollment.last_completed = rng.random() < (0.9 if finished_all else 0.6)
        enrollment.cancelled = not finished_all and rng.random() < 0.03
        # A third of the learners still going were active today or yesterday: current streaks.
        # Everything happens after the course was published (enrolled the day before lesson 1).
        latest = course.published_days_ago - span - 2
        recent = not finished_all and rng.random() < 0.35
        enrollment.last_days_ago = min(rng.randint(0, 1) if recent else rng.randint(0, 330), latest)

    def _plan_payments(self) -> None:
        rng = self.rng
        self.course_payments = [
            e
            for e in self.enrollments
            if self.courses[e.course].pricing == "paid" and self.user_roles[e.user] == "FREE"
        ]
        self.payment_statuses = rng.choices(
            ("SUCCEEDED", "REFUNDED", "PARTIALLY_REFUNDED"),
            weights=(96, 3, 1),
            k=len(self.course_payments),
        )
        # A full refund ends the learner's access to the course (see commerce.entitlements).
        for enrollment, status in zip(self.course_payments, self.payment_statuses, strict=True):
            enrollment.cancelled = enrollment.cancelled or status == "REFUNDED"
        subscriptions = VOLUMES["payments"] - len(self.course_payments)
        assert subscriptions >= 0, "more paid enrollments than year-one payments"
        premium = [u for u, role in enumerate(self.user_roles) if role == "PREMIUM"]
        months = [rng.randint(1, 12) for _ in premium]
        _fit_total(months, subscriptions, 0, [12] * len(premium), rng)
        self.subscription_months = dict(zip(premium, months, strict=True))
        self.paying_users = {e.user for e in self.course_payments} | {
            u for u, m in self.subscription_months.items() if m
        }

    def _plan_badges(self) -> None:
        rng = self.rng
        lessons_per_user = [0] * len(self.user_ids)
        for e in self.enrollments:
            lessons_per_user[e.user] += e.lessons_touched
        mean = sum(lessons_per_user) / len(lessons_per_user)
        # Active learners hold more badges, learners who never started none; the total is the
        # year-one volume.
        self.badges_per_user = [
            min(len(BADGES), round(15 * n / mean * rng.uniform(0.7, 1.3))) for n in lessons_per_user
        ]
        highs = [len(BADGES) if n else 0 for n in lessons_per_user]
        _fit_total(self.badges_per_user, VOLUMES["user_badges"], 0, highs, rng)

    # Rows, in foreign-key order

    def tables(self) -> list[TableLoad]:
        return [
            TableLoad("categories", ("id", "slug", "name", "description", "sort_order"),
                      self.category_rows),
            TableLoad("users", ("id", "email", "name", "role", "identity_provider", "subject",
                                "email_verified", "preferences", "demographics",
                                "stripe_customer_id", "last_login_at", "created_at",
                                "updated_at"), self.user_rows),
            TableLoad("badges", ("id", "code", "name", "description", "icon", "rule"),
                      self.badge_rows),
            TableLoad("courses", ("id", "slug", "title", "description", "learning_outcomes",
                                  "category_id", "duration_days", "status", "price_cents",
                                  "currency", "is_premium", "thumbnail_url", "created_by",
                                  "published_at", "rating_average", "rating_count",
                                  "enrollment_count", "created_at", "updated_at"),
                      self.course_rows),
            TableLoad("lessons", ("id", "course_id", "day_number", "title", "content_markdown",
                                  "content_html", "action_items", "resources", "video_status",
                                  "video_url", "video_duration_seconds", "created_at",
                                  "updated_at"), self.lesson_rows),
            TableLoad("enrollments", ("user_id", "course_id", "status", "completion_percent",
                                      "completed_at", "last_accessed_at", "created_at",
                                      "updated_at"), self.enrollment_rows),
            TableLoad("progress", ("user_id", "lesson_id", "course_id", "completed",
                                   "completed_at", "time_spent_seconds", "notes", "created_at",
                                   "updated_at"), self.progress_rows),
            TableLoad("payments", ("user_id", "course_id", "kind", "status",
                                   "stripe_checkout_session_id", "stripe_payment_intent_id",
                                   "stripe_invoice_id", "amount_cents", "currency",
                                   "refunded_amount_cents", "refund_reason", "created_at",
                                   "updated_at"), self.payment_rows),
            TableLoad("user_badges", ("user_id", "badge_id", "awarded_at"),
                      self.user_badge_rows),
        ]  # fmt: skip

    def category_rows(self) -> Iterator[tuple[Any, ...]]:
        for order, category in enumerate(CATEGORIES, start=1):
            if category.slug not in self.existing_categories:
                yield (
                    self.category_ids[category.slug],
                    category.slug,
                    category.name,
                    category.description,
                    order,
                )

    def user_rows(self) -> Iterator[tuple[Any, ...]]:
        rng = self.rng
        for i, (user_id, role) in enumerate(zip(self.user_ids, self.user_roles, strict=True)):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            created = self._at(self.user_created_days_ago[i])
            yield (
                user_id,
                f"{first}.{last}.{i}@learners.example".lower(),
                f"{first} {last}",
                role,
                "local",
                user_id,  # the local identity provider's subject is the user id
                True,
                json.dumps({"daily_reminder": rng.choice(("07:30", "12:00", "20:00", None))}),
                "{}",
                f"cus_bench{i:08d}" if i in self.paying_users else None,
                self._at(rng.uniform(0, self.user_created_days_ago[i])),
                created,
                created,
            )

    def badge_rows(self) -> Iterator[tuple[Any, ...]]:
        for badge_id, (code, name, description, kind, threshold) in zip(
            self.badge_ids, BADGES, strict=True
        ):
            if code in self.existing_badges:
                continue
            rule = json.dumps({"kind": kind, "threshold": threshold})
            yield badge_id, code, name, description, f"badges/{code}.svg", rule

    def course_rows(self) -> Iterator[tuple[Any, ...]]:
        rng = self.rng
        for course in self.courses:
            category = course.category
            sentences = sorted(rng.sample(range(len(DESCRIPTION_SENTENCES)), 5))
            description = " ".join(
                DESCRIPTION_SENTENCES[s].format(
                    topic=course.topic,
                    days=course.duration,
                    category=category.name,
                    category_description=category.description,
                )
                for s in sentences
            )
            outcomes = [
                f"Explain the core ideas of {course.topic}",
                f"Practise {course.topic} in fifteen minutes a day",
                f"Avoid the common beginner mistakes in {course.topic}",
                f"Finish a small {course.topic} project of your own",
            ]
            published = None if course.status == "DRAFT" else self._at(course.published_days_ago)
            created = self._at(
                course.published_days_ago + rng.randint(1, 30) if published else rng.randint(0, 60)
            )
            ratings = round(course.enrollment_count * rng.uniform(0.05, 0.2))
            slug = _slugify(course.title)
            yield (
                course.id,
                slug,
                course.title,
                description,
                json.dumps(outcomes),
                self.category_ids[category.slug],
                course.duration,
                course.status,
                course.price_cents,
                "usd",
                course.pricing == "premium",
                f"https://cdn.momentum.example/thumbnails/{slug}.webp",
                self.user_ids[rng.randrange(ADMINS)],
                published,
                Decimal(f"{rng.uniform(3.4, 4.9):.2f}") if ratings else Decimal(0),
                ratings,
                0,  # counted by the enrollments trigger as the enrollments are copied
                created,
                published or created,
            )

    def lesson_rows(self) -> Iterator[tuple[Any, ...]]:
        rng = self.rng
        for course, lesson_ids in zip(self.courses, self.lesson_ids, strict=True):
            for day, lesson_id in enumerate(lesson_ids, start=1):
                # Spread the 21 themes over the course's days: a 7-day course skips some.
                theme = LESSON_THEMES[(day - 1) * (len(LESSON_THEMES) - 1) // (course.duration - 1)]
                title = f"Day {day}: {theme.format(topic=course.topic)}"
                markdown, html_text = self._lesson_content(course.topic, title)
                video = rng.choices(("READY", "PENDING", "NONE"), weights=(40, 5, 55))[0]
                created = self._at(course.published_days_ago + 1)
                yield (
                    lesson_id,
                    course.id,
                    day,
                    title,
                    markdown,
                    html_text,
                    json.dumps(rng.sample(ACTION_ITEMS, 3)),
                    json.dumps(
                        [
                            {
                                "title": f"Further reading on {course.topic}",
                                "url": f"https://library.momentum.example/{_slugify(title)}",
                            }
                        ]
                    ),
                    video,
                    f"https://cdn.momentum.example/videos/{lesson_id}.mp4"
                    if video == "READY"
                    else None,
                    rng.randint(180, 600) if video == "READY" else None,
                    created,
                    created,
                )

    def _lesson_content(self, topic: str, title: str) -> tuple[str, str]:
        """The same lesson as markdown and as the HTML it renders to (about 4 KB each)."""
        rng = self.rng

        def sentences(count: int) -> list[str]:
            return [
                s.format(topic=topic, theme_lower=title.split(": ", 1)[1].lower())
                for s in rng.sample(LESSON_SENTENCES, count)
            ]

        sections: list[tuple[str, str, list[str]]] = [
            ("p", "", sentences(7)),
            ("ul", "Key ideas", sentences(5)),
            ("p", "A worked example", sentences(8)),
            ("ol", "Try it today", sentences(4)),
            ("p", "Why it works", sentences(8)),
            ("p", "Reflect", sentences(6)),
            ("p", "Going further", sentences(6)),
        ]
        markdown = [f"# {title}"]
        html_parts = [f"<h1>{html.escape(title)}</h1>"]
        for kind, heading, lines in sections:
            if heading:
                markdown.append(f"## {heading}")
                html_parts.append(f"<h2>{heading}</h2>")
            if kind == "p":
                markdown.append(" ".join(lines))
                html_parts.append(f"<p>{html.escape(' '.join(lines))}</p>")
            else:
                bullets = [f"{n}." if kind == "ol" else "-" for n in range(1, len(lines) + 1)]
                markdown.append(
                    "\n".join(f"{b} {line}" for b, line in zip(bullets, lines, strict=True))
                )
                items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
                html_parts.append(f"<{kind}>{items}</{kind}>")
        return "\n\n".join(markdown) + "\n", "\n".join(html_parts) + "\n"

    def enrollment_rows(self) -> Iterator[tuple[Any, ...]]:
        for e in self.enrollments:
            course = self.courses[e.course]
            completed_lessons = e.lessons_touched - (0 if e.last_completed else 1)
            last = self._at(e.last_days_ago)
            created = self._at(e.first_days_ago + 1)
            if e.cancelled:
                status = "CANCELLED"
            elif completed_lessons == course.duration:
                status = "COMPLETED"
            else:
                status = "ACTIVE"
            yield (
                self.user_ids[e.user],
                course.id,
                status,
                completed_lessons * 100 // course.duration,
                last if status == "COMPLETED" else None,
                last,
                created,
                last,
            )

    def progress_rows(self) -> Iterator[tuple[Any, ...]]:
        rng = self.rng
        for e in self.enrollments:
            user_id = self.user_ids[e.user]
            course_id = self.courses[e.course].id
            lesson_ids = self.lesson_ids[e.course]
            days_ago = e.first_days_ago
            for day in range(1, e.lessons_touched + 1):
                at = self._at(days_ago)
                spent = rng.randint(240, 1500)
                notes = (
                    "Key takeaway: practise a little every day." if rng.random() < 0.08 else None
                )
                if day < e.lessons_touched or e.last_completed:
                    started = at - spent * SECOND
                    yield (
                        user_id,
                        lesson_ids[day - 1],
                        course_id,
                        True,
                        at,
                        spent,
                        notes,
                        started,
                        at,
                    )
                else:
                    yield (
                        user_id,
                        lesson_ids[day - 1],
                        course_id,
                        False,
                        None,
                        spent // 4,
                        notes,
                        at,
                        at,
                    )
                if day < e.lessons_touched:
                    days_ago -= e.gaps[day - 1]

    def payment_rows(self) -> Iterator[tuple[Any, ...]]:
        rng = self.rng
        for n, (e, status) in enumerate(
            zip(self.course_payments, self.payment_statuses, strict=True)
        ):
            course = self.courses[e.course]
            refunded = {
                "REFUNDED": course.price_cents,
                "PARTIALLY_REFUNDED": course.price_cents // 2,
            }
            at = self._at(e.first_days_ago + 1)
            yield (
                self.user_ids[e.user],
                course.id,
                "COURSE",
                status,
                f"cs_bench_{n:08d}",
                f"pi_bench_{n:08d}",
                None,
                course.price_cents,
                "usd",
                refunded.get(status, 0),
                "requested_by_customer" if status in refunded else None,
                at,
                at,
            )
        for user, months in self.subscription_months.items():
            for month in range(months):
                status = "FAILED" if rng.random() < 0.03 else "SUCCEEDED"
                at = self._at(min(month * 30 + rng.uniform(0, 3), self.user_created_days_ago[user]))
                invoice = f"in_bench_{user:06d}_{month:02d}"
                yield (
                    self.user_ids[user],
                    None,
                    "SUBSCRIPTION",
                    status,
                    None,
                    None,
                    invoice,
                    SUBSCRIPTION_CENTS,
                    "usd",
                    0,
                    None,
                    at,
                    at,
                )

    def user_badge_rows(self) -> Iterator[tuple[Any, ...]]:
        rng = self.rng
        # BADGES runs from easiest to hardest: a learner holds the first ones.
        for user, count in enumerate(self.badges_per_user):
            for badge_id in self.badge_ids[:count]:
                awarded = self._at(rng.uniform(0, self.user_created_days_ago[user]))
                yield self.user_ids[user], badge_id, awarded


async def _drop_indexes(conn: asyncpg.Connection, table: str) -> list[str]:
    """Drop ``table``'s primary key, unique and foreign-key constraints and its other indexes,
    returning the statements that restore them exactly (same names and definitions). Building an
    index once over the loaded rows is several times faster than updating it row by row, and
    re-adding a foreign key checks every row in one join instead of one lookup per row."""
    constraints = await conn.fetch(
        """
        SELECT contype = 'f' AS is_foreign_key,
               format('ALTER TABLE %I DROP CONSTRAINT %I', $1::text, conname) AS drop,
               format('ALTER TABLE %I ADD CONSTRAINT %I %s', $1::text, conname,
                      pg_get_constraintdef(oid)) AS restore
        FROM pg_constraint
        WHERE conrelid = $1::regclass AND contype IN ('p', 'u', 'f')
        """,
        table,
    )
    indexes = await conn.fetch(
        """
        SELECT format('DROP INDEX %s', indexrelid::regclass) AS drop,
               pg_get_indexdef(indexrelid) AS restore
        FROM pg_index
        WHERE indrelid = $1::regclass
          AND NOT EXISTS (SELECT 1 FROM pg_constraint
                          WHERE conrelid = indrelid AND conindid = indexrelid)
        """,
        table,
    )
    keys = [row for row in constraints if not row["is_foreign_key"]]
    foreign_keys = [row for row in constraints if row["is_foreign_key"]]
    for row in [*foreign_keys, *keys, *indexes]:
        await conn.execute(row["drop"])
    # Keys first: a foreign key is checked faster once the table's own indexes exist.
    return [row["restore"] for row in [*keys, *indexes, *foreign_keys]]


def _counted(rows: Iterable[tuple[Any, ...]], counter: list[int]) -> Iterator[tuple[Any, ...]]:
    for row in rows:
        counter[0] += 1
        yield row


async def row_counts(conn: asyncpg.Connection) -> dict[str, int]:
    return {table: await conn.fetchval(f'SELECT count(*) FROM "{table}"') for table in VOLUMES}  # noqa: S608 - fixed names


async def load_year_one(dsn: str, *, seed: int = SEED) -> dict[str, int]:
    """Load the data set unless already loaded; return the row count of each year-one table."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            # Concurrent runs wait here, then find the first one's marker.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('bench.year_one_load'))")
            await conn.execute(
                """
                CREATE SCHEMA IF NOT EXISTS bench;
                CREATE TABLE IF NOT EXISTS bench.year_one_load (
                    dataset text PRIMARY KEY,
                    seed bigint NOT NULL,
                    loaded_at timestamptz NOT NULL,
                    load_seconds double precision NOT NULL
                )
                """
            )
            marker = await conn.fetchrow(
                "SELECT loaded_at, load_seconds FROM bench.year_one_load WHERE dataset = $1",
                DATASET,
            )
            if marker is None:
                await _load(conn, seed)
        if marker is None:
            started = time.perf_counter()
            # Outside the transaction: VACUUM cannot run in one. ANALYZE gives the planner the
            # real distributions; VACUUM sets the visibility map, as autovacuum would have in
            # production, so index-only scans work.
            await conn.execute(f"VACUUM (ANALYZE) {', '.join(LOADED_TABLES)}")
            print(f"  {'vacuum, analyze':<16}{'':>12}{time.perf_counter() - started:>9.1f} s")
        else:
            print(
                f"Year-one data set already loaded on {marker['loaded_at']:%Y-%m-%d %H:%M} "
                f"(in {marker['load_seconds']:.0f} s); reusing it."
            )
        counts = await row_counts(conn)
    finally:
        await conn.close()
    short = {t: n for t, n in counts.items() if n < VOLUMES[t]}
    if short:
        raise RuntimeError(
            f"the loaded data set is incomplete ({short}); delete the data folder to reload it"
        )
    return counts


async def _load(conn: asyncpg.Connection, seed: int) -> None:
    load_started = time.perf_counter()
    print(f"Loading the year-one data set (seed {seed}):")
    await conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
    categories = dict(await conn.fetch("SELECT slug, id::text FROM categories"))
    badges = dict(await conn.fetch("SELECT code, id::text FROM badges"))
    # Timestamps travel as PostgreSQL's own binary value, microseconds since 2000-01-01 UTC:
    # creating and encoding five million datetime objects would take a third of the load.
    await conn.set_type_codec(
        "timestamptz",
        schema="pg_catalog",
        encoder=lambda micros: (micros,),
        decoder=lambda value: value[0],
        format="tuple",
    )
    data = YearOne(seed, datetime.now(UTC), categories, badges)
    print(f"  {'plan':<16}{'':>12}{time.perf_counter() - load_started:>9.1f} s")
    for table in data.tables():
        started = time.perf_counter()
        restore = (
            await _drop_indexes(conn, table.name) if table.name in DEFERRED_INDEX_TABLES else []
        )
        counter = [0]
        await conn.copy_records_to_table(
            table.name, columns=list(table.columns), records=_counted(table.rows(), counter)
        )
        for statement in restore:
            await conn.execute(statement)
        print(f"  {table.name:<16}{counter[0]:>12,}{time.perf_counter() - started:>9.1f} s")
    seconds = time.perf_counter() - load_started
    await conn.execute(
        "INSERT INTO bench.year_one_load (dataset, seed, loaded_at, load_seconds) "
        "VALUES ($1, $2, now(), $3)",
        DATASET,
        seed,
        seconds,
    )
    print(f"  {'total':<16}{'':>12}{seconds:>9.1f} s")


def asyncpg_dsn(database_url: str) -> str:
    """asyncpg takes plain ``postgresql://`` URLs, SQLAlchemy's ``+asyncpg`` form is accepted."""
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


@contextmanager
def year_one_database(data_dir: Path) -> Iterator[tuple[dict[str, str], dict[str, int]]]:
    """Start (or reuse, from the URLs in the environment) PostgreSQL and Redis, migrate and load
    the data set; yield the services' environment and the row counts."""
    with embedded_stack(data_dir) as env:
        database_url = env["MOMENTUM_DATABASE_URL"]
        upgrade(Settings(database_url=database_url).database_url)
        counts = asyncio.run(load_year_one(asyncpg_dsn(database_url)))
        yield env, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args()
    with year_one_database(args.data_dir) as (_, counts):
        for table, count in counts.items():
            print(f"  {table:<16}{count:>12,} rows")


if __name__ == "__main__":
    main()
