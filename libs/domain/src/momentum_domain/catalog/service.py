"""The catalog: what learners browse, and what admins author and publish."""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Select, delete, func, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.catalog.content import render_markdown
from momentum_domain.catalog.models import (
    Category,
    Course,
    CourseStatus,
    Lesson,
    VideoStatus,
)
from momentum_domain.errors import Conflict, NotFound, Unprocessable

PriceFilter = Literal["free", "premium", "paid"]
CourseSort = Literal["newest", "rating", "popularity", "relevance"]

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


def parse_ref(ref: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(ref)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class CourseQuery:
    category: str | None = None
    duration: int | None = None
    price: PriceFilter | None = None
    q: str | None = None
    sort: CourseSort | None = None
    limit: int = 20
    offset: int = 0


def price_kind(course: Course) -> PriceFilter:
    if course.is_premium:
        return "premium"
    return "paid" if course.price_cents > 0 else "free"


class CatalogService:
    # ---- reading -------------------------------------------------------------------------

    async def list_published(
        self, session: AsyncSession, query: CourseQuery
    ) -> tuple[list[tuple[Course, Category | None]], int]:
        """A page of published courses and the total matching, in one round trip."""
        total = func.count().over().label("total")
        stmt: Select[Course, Category, int] = (
            select(Course, Category, total)
            .outerjoin(Category, Category.id == Course.category_id)
            .where(Course.status == CourseStatus.PUBLISHED)
        )
        if query.category:
            stmt = stmt.where(Category.slug == query.category)
        if query.duration:
            stmt = stmt.where(Course.duration_days == query.duration)
        if query.price == "free":
            stmt = stmt.where(Course.price_cents == 0, Course.is_premium.is_(False))
        elif query.price == "premium":
            stmt = stmt.where(Course.is_premium.is_(True))
        elif query.price == "paid":
            stmt = stmt.where(Course.price_cents > 0, Course.is_premium.is_(False))

        sort = query.sort or ("relevance" if query.q else "newest")
        order: list[Any] = []
        if query.q:
            # websearch_to_tsquery accepts any text: the search terms are bound data, never SQL.
            tsquery = func.websearch_to_tsquery("english", literal(query.q))
            stmt = stmt.where(Course.search_vector.op("@@")(tsquery))
            if sort == "relevance":
                order.append(func.ts_rank_cd(Course.search_vector, tsquery).desc())
        if sort == "rating":
            order += [Course.rating_average.desc(), Course.rating_count.desc()]
        elif sort == "popularity":
            order.append(Course.enrollment_count.desc())
        order += [Course.published_at.desc().nulls_last(), Course.id]
        rows = (
            await session.execute(stmt.order_by(*order).limit(query.limit).offset(query.offset))
        ).all()
        if not rows and query.offset:
            count_stmt = stmt.with_only_columns(func.count()).order_by(None)
            return [], int(await session.scalar(count_stmt) or 0)
        return [(row[0], row[1]) for row in rows], int(rows[0][2]) if rows else 0

    async def get_course(
        self, session: AsyncSession, ref: str, *, include_unpublished: bool = False
    ) -> Course:
        """A course by id or slug. Unpublished courses are 'not found' unless asked for, so
        their existence never leaks."""
        course_id = parse_ref(ref)
        condition = Course.id == course_id if course_id else Course.slug == ref
        course = await session.scalar(select(Course).where(condition))
        if course is None or (
            course.status is not CourseStatus.PUBLISHED and not include_unpublished
        ):
            raise NotFound("No such course.")
        return course

    async def get_category(
        self, session: AsyncSession, category_id: uuid.UUID | None
    ) -> Category | None:
        return await session.get(Category, category_id) if category_id else None

    async def outline(self, session: AsyncSession, course_id: uuid.UUID) -> list[Lesson]:
        return list(
            await session.scalars(
                select(Lesson).where(Lesson.course_id == course_id).order_by(Lesson.day_number)
            )
        )

    async def categories_with_counts(self, session: AsyncSession) -> list[tuple[Category, int]]:
        published = (
            select(Course.category_id, func.count().label("n"))
            .where(Course.status == CourseStatus.PUBLISHED)
            .group_by(Course.category_id)
            .subquery()
        )
        rows = await session.execute(
            select(Category, func.coalesce(published.c.n, 0))
            .outerjoin(published, published.c.category_id == Category.id)
            .order_by(Category.sort_order, Category.name)
        )
        return [(category, int(count)) for category, count in rows.all()]

    # ---- authoring -----------------------------------------------------------------------

    async def create_course(
        self, session: AsyncSession, *, created_by: uuid.UUID | None, **fields: Any
    ) -> Course:
        await self._check_category(session, fields.get("category_id"))
        base = slugify(fields.pop("slug", None) or fields["title"])
        slug = base
        # A short random suffix on collision: two admins creating "Intro to SQL" both succeed.
        while await session.scalar(select(Course.id).where(Course.slug == slug)):
            slug = f"{base}-{uuid.uuid4().hex[:6]}"
        course = Course(slug=slug, created_by=created_by, status=CourseStatus.DRAFT, **fields)
        session.add(course)
        await session.flush()
        return course

    async def update_course(self, session: AsyncSession, course: Course, **changes: Any) -> Course:
        if "category_id" in changes:
            await self._check_category(session, changes["category_id"])
        if "slug" in changes:
            changes["slug"] = slugify(changes["slug"])
            taken = await session.scalar(
                select(Course.id).where(Course.slug == changes["slug"], Course.id != course.id)
            )
            if taken:
                raise Conflict(f"The slug '{changes['slug']}' is taken by another course.")
        new_duration = changes.get("duration_days", course.duration_days)
        if course.status is CourseStatus.PUBLISHED and new_duration != course.duration_days:
            raise Conflict("A published course's duration cannot change; archive it first.")
        too_late = await session.scalar(
            select(func.count()).where(
                Lesson.course_id == course.id, Lesson.day_number > new_duration
            )
        )
        if too_late:
            raise Conflict(f"The course has lessons after day {new_duration}; delete them first.")
        for name, value in changes.items():
            setattr(course, name, value)
        await session.flush()
        return course

    async def delete_course(self, session: AsyncSession, course: Course) -> None:
        await session.delete(course)
        await session.flush()

    async def change_status(
        self, session: AsyncSession, course: Course, target: CourseStatus
    ) -> Course:
        if target not in ALLOWED_TRANSITIONS[course.status]:
            raise Conflict(
                f"A {course.status.value} course cannot become {target.value}.",
                extra={"current_status": course.status.value, "requested_status": target.value},
            )
        if target is CourseStatus.PUBLISHED:
            await self._check_publishable(session, course)
            course.published_at = course.published_at or datetime.now(UTC)
        course.status = target
        await session.flush()
        return course

    async def _check_publishable(self, session: AsyncSession, course: Course) -> None:
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

    async def add_lesson(self, session: AsyncSession, course: Course, **fields: Any) -> Lesson:
        day = fields["day_number"]
        if day > course.duration_days:
            raise Unprocessable(f"Day {day} is beyond this {course.duration_days}-day course.")
        lesson_id = await session.scalar(
            insert(Lesson)
            .values(
                id=uuid.uuid4(),
                course_id=course.id,
                content_html=render_markdown(fields.get("content_markdown", "")),
                video_status=VideoStatus.NONE,
                **{"content_markdown": "", "action_items": [], "resources": [], **fields},
            )
            .on_conflict_do_nothing(index_elements=[Lesson.course_id, Lesson.day_number])
            .returning(Lesson.id)
        )
        if lesson_id is None:
            raise Conflict(f"The course already has a lesson for day {day}.")
        lesson = await session.get(Lesson, lesson_id)
        assert lesson is not None
        return lesson

    async def add_lessons(
        self, session: AsyncSession, course: Course, lessons: list[dict[str, Any]]
    ) -> list[Lesson]:
        """All the lessons of a course being created, in one flush (a generated course's save).
        Each dict holds a lesson's fields, as for ``add_lesson``."""
        days = [fields["day_number"] for fields in lessons]
        if len(set(days)) != len(days) or max(days, default=0) > course.duration_days:
            raise Unprocessable(f"Lessons must have distinct days within {course.duration_days}.")
        created = [
            Lesson(
                course_id=course.id,
                content_html=render_markdown(fields.get("content_markdown", "")),
                **{"content_markdown": "", "action_items": [], "resources": [], **fields},
            )
            for fields in lessons
        ]
        session.add_all(created)
        await session.flush()
        return created

    async def get_lesson_by_id(self, session: AsyncSession, lesson_id: uuid.UUID) -> Lesson:
        lesson = await session.get(Lesson, lesson_id)
        if lesson is None:
            raise NotFound("No such lesson.")
        return lesson

    async def update_lesson(self, session: AsyncSession, lesson: Lesson, **changes: Any) -> Lesson:
        course = await session.get(Course, lesson.course_id)
        assert course is not None
        if "day_number" in changes and changes["day_number"] != lesson.day_number:
            if course.status is CourseStatus.PUBLISHED:
                raise Conflict("Lessons of a published course cannot move to another day.")
            if changes["day_number"] > course.duration_days:
                raise Unprocessable(f"Day {changes['day_number']} is beyond this course.")
            taken = await session.scalar(
                select(Lesson.id).where(
                    Lesson.course_id == course.id, Lesson.day_number == changes["day_number"]
                )
            )
            if taken:
                raise Conflict(f"The course already has a lesson for day {changes['day_number']}.")
        if "content_markdown" in changes:
            changes["content_html"] = render_markdown(changes["content_markdown"])
        for name, value in changes.items():
            setattr(lesson, name, value)
        await session.flush()
        return lesson

    async def delete_lesson(self, session: AsyncSession, lesson: Lesson) -> None:
        course = await session.get(Course, lesson.course_id)
        if course is not None and course.status is CourseStatus.PUBLISHED:
            raise Conflict("A published course must keep a lesson for every day; archive it first.")
        await session.delete(lesson)
        await session.flush()

    async def _check_category(self, session: AsyncSession, category_id: uuid.UUID | None) -> None:
        if category_id and await session.get(Category, category_id) is None:
            raise Unprocessable(
                "No such category.",
                extra={
                    "errors": [
                        {"field": "category_id", "source": "body", "message": "Unknown category"}
                    ]
                },
            )

    # ---- categories ----------------------------------------------------------------------

    async def create_category(self, session: AsyncSession, **fields: Any) -> Category:
        fields["slug"] = slugify(fields.get("slug") or fields["name"], CATEGORY_SLUG_MAX)
        category_id = await session.scalar(
            insert(Category)
            .values(id=uuid.uuid4(), **{"description": "", "sort_order": 0, **fields})
            .on_conflict_do_nothing()
            .returning(Category.id)
        )
        if category_id is None:
            raise Conflict("A category with this name or slug already exists.")
        category = await session.get(Category, category_id)
        assert category is not None
        return category

    async def get_category_or_404(self, session: AsyncSession, category_id: uuid.UUID) -> Category:
        category = await session.get(Category, category_id)
        if category is None:
            raise NotFound("No such category.")
        return category

    async def update_category(
        self, session: AsyncSession, category: Category, **changes: Any
    ) -> Category:
        if "slug" in changes:
            changes["slug"] = slugify(changes["slug"], CATEGORY_SLUG_MAX)
        clash = await session.scalar(
            select(Category.id).where(
                Category.id != category.id,
                (Category.slug == changes.get("slug", category.slug))
                | (Category.name == changes.get("name", category.name)),
            )
        )
        if clash:
            raise Conflict("A category with this name or slug already exists.")
        for name, value in changes.items():
            setattr(category, name, value)
        await session.flush()
        return category

    async def delete_category(self, session: AsyncSession, category: Category) -> None:
        # Its courses stay, uncategorised (the foreign key is ON DELETE SET NULL).
        await session.execute(delete(Category).where(Category.id == category.id))


def has_video(lesson: Lesson) -> bool:
    return lesson.video_status is VideoStatus.READY and bool(lesson.video_url)


catalog = CatalogService()

__all__ = ["CatalogService", "CourseQuery", "catalog"]
