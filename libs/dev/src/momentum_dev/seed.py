"""Demo content for the embedded setup, written once: three published courses of 7, 14 and 21
days with every lesson, a draft, and an admin and a learner account."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.catalog.content import render_markdown
from momentum_domain.catalog.models import Category, Course, CourseStatus, Lesson
from momentum_domain.users.models import Role
from momentum_domain.users.service import users


@dataclass(frozen=True)
class DemoAccount:
    role: str
    email: str
    password: str


@dataclass(frozen=True)
class DemoCourse:
    slug: str
    title: str
    description: str
    category_slug: str
    days: int
    status: CourseStatus
    price_cents: int
    is_premium: bool
    topics: tuple[str, ...]


DEMO_COURSES = (
    DemoCourse(
        "python-in-7-days",
        "Python in 7 Days",
        "Write useful Python from day one: values, control flow, functions, files and a small "
        "project, fifteen minutes a day.",
        "technology",
        7,
        CourseStatus.PUBLISHED,
        0,
        False,
        ("Values and variables", "Decisions and loops", "Functions", "Lists and dictionaries",
         "Reading and writing files", "Errors and debugging", "Your first small project"),
    ),
    DemoCourse(
        "mindful-productivity",
        "Mindful Productivity in 14 Days",
        "Build calm focus: attention, planning, deep work and rest, with one small practice a "
        "day.",
        "personal-development",
        14,
        CourseStatus.PUBLISHED,
        0,
        True,
        ("Noticing attention", "A weekly review", "Single-tasking", "Planning the day",
         "Deep work blocks", "Managing interruptions", "Energy, not time", "Saying no",
         "Habit stacking", "Digital minimalism", "Rest as a skill", "Reflection journaling",
         "Systems over goals", "Your personal operating manual"),
    ),
    DemoCourse(
        "startup-finance-fundamentals",
        "Startup Finance Fundamentals",
        "Read the numbers that decide a young company's fate: runway, unit economics, pricing "
        "and fundraising, in three weeks.",
        "business",
        21,
        CourseStatus.PUBLISHED,
        2900,
        False,
        ("Why finance matters early", "The three statements", "Cash versus profit", "Burn and "
         "runway", "Unit economics", "Customer acquisition cost", "Lifetime value", "Pricing "
         "models", "Gross margin", "Forecasting revenue", "Hiring plans", "Budgeting",
         "Cap tables", "Dilution", "Seed rounds", "SAFEs and notes", "Board reporting",
         "Metrics investors ask for", "Scenario planning", "Cutting costs wisely",
         "Your finance playbook"),
    ),
    DemoCourse(
        "conversational-spanish-starter",
        "Conversational Spanish Starter",
        "A draft awaiting review: greetings, numbers, directions and ordering food.",
        "languages",
        7,
        CourseStatus.DRAFT,
        0,
        False,
        ("Greetings", "Numbers", "Directions", "At the cafe", "Shopping", "Small talk",
         "A whole conversation"),
    ),
)  # fmt: skip


def _lesson_markdown(course: DemoCourse, day: int, topic: str) -> str:
    return (
        f"## Day {day}: {topic}\n\n"
        f"Today in *{course.title}* we look at **{topic.lower()}**. Read the short overview, "
        "then try the action items: they take about ten minutes.\n\n"
        "### Key ideas\n\n"
        f"- What {topic.lower()} means in practice\n"
        "- A common mistake, and how to avoid it\n"
        "- One thing to try before tomorrow\n"
    )


def _accounts_file(data_dir: Path) -> Path:
    return data_dir / "demo-accounts.json"


async def seed_demo(session: AsyncSession, data_dir: Path) -> list[DemoAccount]:
    """Write the demo content unless it is there already; return the demo sign-ins."""
    accounts_file = _accounts_file(data_dir)
    if accounts_file.exists():
        saved = json.loads(accounts_file.read_text())
        if await users.get_by_email(session, saved[0]["email"]) is not None:
            return [DemoAccount(**item) for item in saved]

    accounts = [
        DemoAccount("ADMIN", "admin@momentum.local", secrets.token_urlsafe(12)),
        DemoAccount("FREE", "learner@momentum.local", secrets.token_urlsafe(12)),
    ]
    created = {}
    for account in accounts:
        created[account.role] = await users.create_local(
            session,
            email=account.email,
            password=account.password,
            name="Demo Admin" if account.role == "ADMIN" else "Demo Learner",
            role=Role(account.role),
        )
    categories = {c.slug: c.id for c in await session.scalars(select(Category))}
    now = datetime.now(UTC)
    for demo in DEMO_COURSES:
        course = Course(
            slug=demo.slug,
            title=demo.title,
            description=demo.description,
            learning_outcomes=[f"Understand {topic.lower()}" for topic in demo.topics[:3]],
            category_id=categories.get(demo.category_slug),
            duration_days=demo.days,
            status=demo.status,
            price_cents=demo.price_cents,
            is_premium=demo.is_premium,
            created_by=created["ADMIN"].id,
            published_at=now if demo.status is CourseStatus.PUBLISHED else None,
        )
        session.add(course)
        await session.flush()
        for day, topic in enumerate(demo.topics, start=1):
            markdown = _lesson_markdown(demo, day, topic)
            session.add(
                Lesson(
                    course_id=course.id,
                    day_number=day,
                    title=topic,
                    content_markdown=markdown,
                    content_html=render_markdown(markdown),
                    action_items=[
                        {"text": f"Spend ten minutes practising {topic.lower()}."},
                        {"text": "Write one sentence about what you noticed."},
                    ],
                    resources=[
                        {"title": f"Further reading: {topic}", "url": "https://example.com"}
                    ],
                )
            )
    await session.flush()
    accounts_file.parent.mkdir(parents=True, exist_ok=True)
    accounts_file.write_text(json.dumps([a.__dict__ for a in accounts], indent=2))
    accounts_file.chmod(0o600)
    return accounts
