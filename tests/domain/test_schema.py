"""Constraints the database enforces whoever writes to it."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.models import Category, Course, Lesson, Role, User
from momentum_domain.users.service import users


async def _course(db: AsyncSession, **overrides: object) -> Course:
    category = await db.scalar(select(Category).limit(1))
    assert category is not None
    values: dict[str, object] = {
        "slug": f"course-{uuid.uuid4().hex[:8]}",
        "title": "Sourdough basics",
        "description": "Bake bread with wild yeast",
        "category_id": category.id,
        "duration_days": 7,
    }
    values.update(overrides)
    course = Course(**values)
    db.add(course)
    await db.flush()
    return course


async def test_updated_at_is_maintained_by_the_database(db: AsyncSession) -> None:
    course = await _course(db)
    await db.commit()
    before = course.updated_at
    await asyncio.sleep(0.01)
    # A raw UPDATE, as an operator or a bulk job would issue it.
    await db.execute(update(Course).where(Course.id == course.id).values(title="Rye basics"))
    await db.commit()
    await db.refresh(course)
    assert course.updated_at > before
    assert course.created_at <= before


@pytest.mark.parametrize("days", [0, 10, 30])
async def test_course_duration_must_be_7_14_or_21(db: AsyncSession, days: int) -> None:
    with pytest.raises(IntegrityError, match="valid_duration"):
        await _course(db, duration_days=days)


async def test_lesson_day_is_unique_within_a_course(db: AsyncSession) -> None:
    course = await _course(db)
    db.add(Lesson(course_id=course.id, day_number=1, title="One"))
    await db.flush()
    db.add(Lesson(course_id=course.id, day_number=1, title="Also one"))
    with pytest.raises(IntegrityError, match="uq_lessons_course_id_day_number"):
        await db.flush()


async def test_emails_are_unique_whatever_their_case(db: AsyncSession) -> None:
    await users.create_local(db, email="Ada@Example.com", password="x" * 12, name="Ada")
    from momentum_domain.errors import Conflict

    with pytest.raises(Conflict):
        await users.create_local(db, email="ada@EXAMPLE.com", password="y" * 12, name="Ada 2")
    with pytest.raises(IntegrityError, match="email_lowercase"):
        await db.execute(
            text(
                "INSERT INTO users (email, name, role, identity_provider, subject, "
                "email_verified, preferences, demographics) VALUES "
                "('Grace@Example.com', 'Grace', 'FREE', 'local', 'g', false, '{}', '{}')"
            )
        )


async def test_search_vector_is_computed_from_title_and_description(db: AsyncSession) -> None:
    course = await _course(db, title="Sourdough basics", description="Wild yeast fermentation")
    matches = await db.scalar(
        select(Course.id).where(
            Course.id == course.id,
            Course.search_vector.op("@@")(text("websearch_to_tsquery('english', 'fermenting')")),
        )
    )
    assert matches == course.id


async def test_role_is_checked(db: AsyncSession) -> None:
    user = await users.create_local(db, email="r@example.com", password="x" * 12, name="R")
    assert user.role is Role.FREE
    with pytest.raises(IntegrityError, match="user_role"):
        await db.execute(text("UPDATE users SET role = 'ROOT' WHERE id = :id"), {"id": user.id})
    await db.rollback()
    assert await db.scalar(select(User).where(User.email == "r@example.com")) is None
