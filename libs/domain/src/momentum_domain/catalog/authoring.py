"""The catalog's rules and statements for authoring, inside a caller's transaction: no audit,
no commit. The admin use cases (catalog.service) and a generated course's save compose them."""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import asdict
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.catalog.content import render_markdown
from momentum_domain.catalog.inputs import (
    CategoryChanges,
    CourseChanges,
    LessonChanges,
    NewCategory,
    NewCourse,
    NewLesson,
    sent,
)
from momentum_domain.catalog.models import Category, Course, CourseStatus, Lesson
from momentum_domain.errors import Conflict, Unprocessable

# The lifecycle an admin can move a course through.
ALLOWED_TRANSITIONS: dict[CourseStatus, set[CourseStatus]] = {
    CourseStatus.DRAFT: {CourseStatus.PUBLISHED},
    CourseStatus.PUBLISHED: {CourseStatus.ARCHIVED},
    CourseStatus.ARCHIVED: {CourseStatus.PUBLISHED},
}

# What the slug columns hold (courses.slug is longer, categories.slug shorter).
COURSE_SLUG_MAX = 180
CATEGORY_SLUG_MAX = 80


def slugify(text: str, max_length: int = COURSE_SLUG_MAX) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower())
    return slug.strip("-")[:max_length].strip("-") or "course"


# ---- courses -------------------------------------------------------------------------------


async def insert_course(
    session: AsyncSession, draft: NewCourse, *, created_by: uuid.UUID | None
) -> Course:
    """A new draft course."""
    await _check_category(session, draft.category_id)
    fields = asdict(draft)
    base = slugify(fields.pop("slug") or draft.title)
    slug = base
    # A short random suffix on collision: two admins creating "Intro to SQL" both succeed.
    while await session.scalar(select(Course.id).where(Course.slug == slug)):
        slug = f"{base}-{uuid.uuid4().hex[:6]}"
    course = Course(slug=slug, created_by=created_by, status=CourseStatus.DRAFT, **fields)
    session.add(course)
    await session.flush()
    return course


async def change_course(session: AsyncSession, course: Course, changes: CourseChanges) -> None:
    updates = sent(changes)
    if "category_id" in updates:
        await _check_category(session, updates["category_id"])
    if "slug" in updates:
        updates["slug"] = slugify(updates["slug"])
        taken = await session.scalar(
            select(Course.id).where(Course.slug == updates["slug"], Course.id != course.id)
        )
        if taken:
            raise Conflict(f"The slug '{updates['slug']}' is taken by another course.")
    new_duration = updates.get("duration_days", course.duration_days)
    if course.status is CourseStatus.PUBLISHED and new_duration != course.duration_days:
        raise Conflict("A published course's duration cannot change; archive it first.")
    too_late = await session.scalar(
        select(func.count()).where(Lesson.course_id == course.id, Lesson.day_number > new_duration)
    )
    if too_late:
        raise Conflict(f"The course has lessons after day {new_duration}; delete them first.")
    for name, value in updates.items():
        setattr(course, name, value)
    await session.flush()


async def transition(session: AsyncSession, course: Course, target: CourseStatus) -> None:
    """Move a course along its lifecycle; publishing needs a lesson for every day."""
    if target not in ALLOWED_TRANSITIONS[course.status]:
        raise Conflict(
            f"A {course.status.value} course cannot become {target.value}.",
            extra={"current_status": course.status.value, "requested_status": target.value},
        )
    if target is CourseStatus.PUBLISHED:
        await _check_publishable(session, course)
        course.published_at = course.published_at or datetime.now(UTC)
    course.status = target
    await session.flush()


async def _check_publishable(session: AsyncSession, course: Course) -> None:
    days = set(
        await session.scalars(select(Lesson.day_number).where(Lesson.course_id == course.id))
    )
    missing = sorted(set(range(1, course.duration_days + 1)) - days)
    if missing:
        raise Conflict(
            f"A {course.duration_days}-day course needs a lesson for every day before it is "
            f"published; missing days: {', '.join(map(str, missing))}.",
            extra={"missing_days": missing},
        )


async def _check_category(session: AsyncSession, category_id: uuid.UUID | None) -> None:
    if category_id and await session.get(Category, category_id) is None:
        raise Unprocessable(
            "No such category.",
            extra={
                "errors": [
                    {"field": "category_id", "source": "body", "message": "Unknown category"}
                ]
            },
        )


# ---- lessons -------------------------------------------------------------------------------


async def insert_lesson(session: AsyncSession, course: Course, draft: NewLesson) -> Lesson:
    """A lesson for a day the course does not have yet (409 if it does)."""
    if draft.day_number > course.duration_days:
        raise Unprocessable(
            f"Day {draft.day_number} is beyond this {course.duration_days}-day course."
        )
    # ON CONFLICT: two admins adding the same day at once get one lesson and one 409.
    lesson_id = await session.scalar(
        insert(Lesson)
        .values(id=uuid.uuid4(), **_lesson_row(course, draft))
        .on_conflict_do_nothing(index_elements=[Lesson.course_id, Lesson.day_number])
        .returning(Lesson.id)
    )
    if lesson_id is None:
        raise Conflict(f"The course already has a lesson for day {draft.day_number}.")
    lesson = await session.get(Lesson, lesson_id)
    assert lesson is not None
    return lesson


async def insert_lessons(
    session: AsyncSession, course: Course, drafts: list[NewLesson]
) -> list[Lesson]:
    """All the lessons of a course being created, in one flush (a generated course's save)."""
    days = [draft.day_number for draft in drafts]
    if len(set(days)) != len(days) or max(days, default=0) > course.duration_days:
        raise Unprocessable(f"Lessons must have distinct days within {course.duration_days}.")
    created = [Lesson(**_lesson_row(course, draft)) for draft in drafts]
    session.add_all(created)
    await session.flush()
    return created


def _lesson_row(course: Course, draft: NewLesson) -> dict[str, object]:
    return {
        **asdict(draft),
        "course_id": course.id,
        "content_html": render_markdown(draft.content_markdown),
    }


async def change_lesson(
    session: AsyncSession, course: Course, lesson: Lesson, changes: LessonChanges
) -> None:
    updates = sent(changes)
    day = updates.get("day_number", lesson.day_number)
    if day != lesson.day_number:
        if course.status is CourseStatus.PUBLISHED:
            raise Conflict("Lessons of a published course cannot move to another day.")
        if day > course.duration_days:
            raise Unprocessable(f"Day {day} is beyond this course.")
        taken = await session.scalar(
            select(Lesson.id).where(Lesson.course_id == course.id, Lesson.day_number == day)
        )
        if taken:
            raise Conflict(f"The course already has a lesson for day {day}.")
    if "content_markdown" in updates:
        updates["content_html"] = render_markdown(updates["content_markdown"])
    for name, value in updates.items():
        setattr(lesson, name, value)
    await session.flush()


async def remove_lesson(session: AsyncSession, course: Course, lesson: Lesson) -> None:
    if course.status is CourseStatus.PUBLISHED:
        raise Conflict("A published course must keep a lesson for every day; archive it first.")
    await session.delete(lesson)
    await session.flush()


# ---- categories ----------------------------------------------------------------------------


async def insert_category(session: AsyncSession, draft: NewCategory) -> Category:
    fields = asdict(draft)
    fields["slug"] = slugify(draft.slug or draft.name, CATEGORY_SLUG_MAX)
    category_id = await session.scalar(
        insert(Category).values(id=uuid.uuid4(), **fields).on_conflict_do_nothing()
        .returning(Category.id)
    )  # fmt: skip
    if category_id is None:
        raise Conflict("A category with this name or slug already exists.")
    category = await session.get(Category, category_id)
    assert category is not None
    return category


async def change_category(
    session: AsyncSession, category: Category, changes: CategoryChanges
) -> None:
    updates = sent(changes)
    if "slug" in updates:
        updates["slug"] = slugify(updates["slug"], CATEGORY_SLUG_MAX)
    clash = await session.scalar(
        select(Category.id).where(
            Category.id != category.id,
            (Category.slug == updates.get("slug", category.slug))
            | (Category.name == updates.get("name", category.name)),
        )
    )
    if clash:
        raise Conflict("A category with this name or slug already exists.")
    for name, value in updates.items():
        setattr(category, name, value)
    await session.flush()


async def remove_category(session: AsyncSession, category: Category) -> None:
    # Its courses stay, uncategorised (the foreign key is ON DELETE SET NULL).
    await session.execute(delete(Category).where(Category.id == category.id))
