"""The catalog: what learners browse, and what admins author and publish. Each authoring
method is one admin use case: it fetches by id, applies the catalog's rules
(catalog.authoring), audits, announces ``CatalogChanged`` and commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.audit.service import RequestOrigin, audit
from momentum_domain.catalog import authoring
from momentum_domain.catalog.events import CatalogChanged
from momentum_domain.catalog.inputs import (
    CategoryChanges,
    CourseChanges,
    LessonChanges,
    NewCategory,
    NewCourse,
    NewLesson,
    sent,
)
from momentum_domain.catalog.models import Category, Course, CourseStatus, Lesson, VideoStatus
from momentum_domain.errors import NotFound
from momentum_domain.kit.pagination import Paged, PageRequest, paginate, paginate_rows
from momentum_domain.kit.unit_of_work import commit, publish

PriceFilter = Literal["free", "premium", "paid"]
CourseSort = Literal["newest", "rating", "popularity", "relevance"]


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


@dataclass(frozen=True, slots=True)
class CourseView:
    course: Course
    category: Category | None
    lessons: list[Lesson]


def price_kind(course: Course) -> PriceFilter:
    if course.is_premium:
        return "premium"
    return "paid" if course.price_cents > 0 else "free"


class CatalogService:
    # ---- reading -------------------------------------------------------------------------

    async def list_published(
        self, session: AsyncSession, query: CourseQuery
    ) -> Paged[tuple[Course, Category | None]]:
        """A page of published courses with their categories, and the total matching."""
        stmt = (
            select(Course, Category)
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
        page = PageRequest(query.limit, query.offset)
        rows = await paginate_rows(session, stmt, page, order)
        return Paged([(row[0], row[1]) for row in rows.items], rows.total)

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

    async def view_course(
        self, session: AsyncSession, ref: str, *, include_unpublished: bool = False
    ) -> CourseView:
        """A course's page: the course by id or slug (as ``get_course``), its category and its
        lessons in day order."""
        course = await self.get_course(session, ref, include_unpublished=include_unpublished)
        category = await session.get(Category, course.category_id) if course.category_id else None
        return CourseView(course, category, await self.outline(session, course.id))

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

    # ---- authoring (admin use cases) ----------------------------------------------------

    async def list_courses(
        self, session: AsyncSession, status: CourseStatus | None, page: PageRequest
    ) -> Paged[Course]:
        """Every course, in any status, newest first."""
        stmt = select(Course)
        if status:
            stmt = stmt.where(Course.status == status)
        return await paginate(session, stmt, page, [Course.created_at.desc(), Course.id])

    async def course_with_lessons(
        self, session: AsyncSession, course_id: uuid.UUID
    ) -> tuple[Course, list[Lesson]]:
        course = await self._course(session, course_id)
        return course, await self.outline(session, course.id)

    async def create_course(
        self, session: AsyncSession, draft: NewCourse, *, actor_id: uuid.UUID,
        origin: RequestOrigin,
    ) -> Course:  # fmt: skip
        course = await authoring.insert_course(session, draft, created_by=actor_id)
        await self._done(
            session, actor_id, origin, "course.create", course, {"title": course.title}
        )
        return course

    async def update_course(
        self, session: AsyncSession, course_id: uuid.UUID, changes: CourseChanges, *,
        actor_id: uuid.UUID, origin: RequestOrigin,
    ) -> Course:  # fmt: skip
        course = await self._course(session, course_id)
        await authoring.change_course(session, course, changes)
        await self._done(session, actor_id, origin, "course.update", course, _json(sent(changes)))
        return course

    async def delete_course(
        self, session: AsyncSession, course_id: uuid.UUID, *, actor_id: uuid.UUID,
        origin: RequestOrigin,
    ) -> None:  # fmt: skip
        """A course and its lessons (enrollments and progress go with it)."""
        course = await self._course(session, course_id)
        await session.delete(course)
        await session.flush()
        await self._done(
            session, actor_id, origin, "course.delete", course, {"title": course.title}
        )

    async def set_status(
        self, session: AsyncSession, course_id: uuid.UUID, target: CourseStatus, *,
        actor_id: uuid.UUID, origin: RequestOrigin,
    ) -> Course:  # fmt: skip
        course = await self._course(session, course_id)
        previous = course.status
        await authoring.transition(session, course, target)
        details = {"from": previous.value, "to": course.status.value}
        await self._done(session, actor_id, origin, "course.status", course, details)
        return course

    async def add_lesson(
        self, session: AsyncSession, course_id: uuid.UUID, draft: NewLesson, *,
        actor_id: uuid.UUID, origin: RequestOrigin,
    ) -> Lesson:  # fmt: skip
        course = await self._course(session, course_id)
        lesson = await authoring.insert_lesson(session, course, draft)
        details = {"course_id": str(course.id), "day": lesson.day_number}
        await self._done(session, actor_id, origin, "lesson.create", lesson, details)
        return lesson

    async def update_lesson(
        self, session: AsyncSession, lesson_id: uuid.UUID, changes: LessonChanges, *,
        actor_id: uuid.UUID, origin: RequestOrigin,
    ) -> Lesson:  # fmt: skip
        lesson = await self._lesson(session, lesson_id)
        course = await self._course(session, lesson.course_id)
        await authoring.change_lesson(session, course, lesson, changes)
        details = {"fields": sorted(sent(changes))}
        await self._done(session, actor_id, origin, "lesson.update", lesson, details)
        return lesson

    async def delete_lesson(
        self, session: AsyncSession, lesson_id: uuid.UUID, *, actor_id: uuid.UUID,
        origin: RequestOrigin,
    ) -> None:  # fmt: skip
        lesson = await self._lesson(session, lesson_id)
        course = await self._course(session, lesson.course_id)
        await authoring.remove_lesson(session, course, lesson)
        details = {"course_id": str(lesson.course_id), "day": lesson.day_number}
        await self._done(session, actor_id, origin, "lesson.delete", lesson, details)

    async def create_category(
        self, session: AsyncSession, draft: NewCategory, *, actor_id: uuid.UUID,
        origin: RequestOrigin,
    ) -> Category:  # fmt: skip
        category = await authoring.insert_category(session, draft)
        details = {"name": category.name}
        await self._done(session, actor_id, origin, "category.create", category, details)
        return category

    async def update_category(
        self, session: AsyncSession, category_id: uuid.UUID, changes: CategoryChanges, *,
        actor_id: uuid.UUID, origin: RequestOrigin,
    ) -> tuple[Category, int]:  # fmt: skip
        """The changed category and how many published courses it has."""
        category = await self._category(session, category_id)
        await authoring.change_category(session, category, changes)
        await self._done(session, actor_id, origin, "category.update", category, sent(changes))
        published = await session.scalar(
            select(func.count()).where(
                Course.category_id == category.id, Course.status == CourseStatus.PUBLISHED
            )
        )
        return category, int(published or 0)

    async def delete_category(
        self, session: AsyncSession, category_id: uuid.UUID, *, actor_id: uuid.UUID,
        origin: RequestOrigin,
    ) -> None:  # fmt: skip
        """Its courses stay, without a category."""
        category = await self._category(session, category_id)
        await authoring.remove_category(session, category)
        details = {"name": category.name}
        await self._done(session, actor_id, origin, "category.delete", category, details)

    async def _course(self, session: AsyncSession, course_id: uuid.UUID) -> Course:
        course = await session.get(Course, course_id)
        if course is None:
            raise NotFound("No such course.")
        return course

    async def _lesson(self, session: AsyncSession, lesson_id: uuid.UUID) -> Lesson:
        lesson = await session.get(Lesson, lesson_id)
        if lesson is None:
            raise NotFound("No such lesson.")
        return lesson

    async def _category(self, session: AsyncSession, category_id: uuid.UUID) -> Category:
        category = await session.get(Category, category_id)
        if category is None:
            raise NotFound("No such category.")
        return category

    async def _done(
        self, session: AsyncSession, actor_id: uuid.UUID, origin: RequestOrigin, action: str,
        resource: Course | Lesson | Category, details: dict[str, Any],
    ) -> None:  # fmt: skip
        """How every admin write ends: audited in its transaction, committed, and the public
        catalog's caches told (after the commit, so no reader re-caches the old state)."""
        await audit.record(
            session, actor_id=actor_id, action=action, resource_type=action.split(".")[0],
            resource_id=resource.id, origin=origin, details=details,
        )  # fmt: skip
        publish(session, CatalogChanged())
        await commit(session)


def _json(values: dict[str, Any]) -> dict[str, Any]:
    """Changes as the audit trail's JSON holds them (ids as strings)."""
    return {name: str(v) if isinstance(v, uuid.UUID) else v for name, v in values.items()}


def has_video(lesson: Lesson) -> bool:
    return lesson.video_status is VideoStatus.READY and bool(lesson.video_url)


catalog = CatalogService()

__all__ = ["CatalogService", "CourseQuery", "catalog"]
