"""Content management: courses, their lessons and status, and categories."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post, put
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy import func, select

from momentum_api.admin.schemas import (
    AdminCourseDetail,
    AdminCourseOut,
    AdminLessonOut,
    CategoryIn,
    CategoryPatch,
    CourseIn,
    CoursePatch,
    LessonIn,
    LessonPatch,
    StatusIn,
    admin_course,
    admin_course_detail,
    admin_lesson,
)
from momentum_api.admin.writes import commit_admin_write
from momentum_api.catalog.schemas import CategoryOut
from momentum_api.deps import CatalogCache, DbSession
from momentum_api.identity.guards import admin
from momentum_api.identity.principal import Principal
from momentum_api.schemas import Offset, Page, changes
from momentum_domain.catalog.models import Course, CourseStatus
from momentum_domain.catalog.service import catalog

AdminRequest = Request[Principal, Any, Any]


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = msgspec.to_builtins(values)
    return result


async def _course(db_session: DbSession, course_id: FromPath[uuid.UUID]) -> Course:
    return await catalog.get_course(db_session, str(course_id), include_unpublished=True)


class CourseAdminController(Controller):
    path = "/admin/courses"
    tags = ["Admin: content"]
    guards = [admin]
    security = [{"BearerToken": []}]

    @get("/", operation_id="adminListCourses", summary="Every course, in any status")
    async def list_courses(
        self,
        db_session: DbSession,
        status: FromQuery[CourseStatus | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
        offset: Offset = 0,
    ) -> Page[AdminCourseOut]:
        stmt = select(Course, func.count().over())
        if status:
            stmt = stmt.where(Course.status == status)
        rows = (
            await db_session.execute(
                stmt.order_by(Course.created_at.desc(), Course.id).limit(limit).offset(offset)
            )
        ).all()
        return Page(
            [admin_course(row[0]) for row in rows], int(rows[0][1]) if rows else 0, limit, offset
        )

    @post(
        "/",
        operation_id="adminCreateCourse",
        status_code=HTTP_201_CREATED,
        summary="Create a draft",
    )
    async def create_course(
        self,
        request: AdminRequest,
        db_session: DbSession,
        catalog_cache: CatalogCache,
        data: JSONBody[CourseIn],
    ) -> AdminCourseOut:
        fields = {name: getattr(data, name) for name in data.__struct_fields__}
        course = await catalog.create_course(db_session, created_by=request.user.id, **fields)
        await commit_admin_write(
            request, db_session, catalog_cache, action="course.create",
            resource_type="course", resource_id=course.id, details={"title": course.title},
        )  # fmt: skip
        return admin_course(course)

    @get("/{course_id:uuid}", operation_id="adminGetCourse", summary="A course with its lessons")
    async def get_course(
        self, db_session: DbSession, course_id: FromPath[uuid.UUID]
    ) -> AdminCourseDetail:
        course = await _course(db_session, course_id)
        return admin_course_detail(course, await catalog.outline(db_session, course.id))

    @patch("/{course_id:uuid}", operation_id="adminUpdateCourse", summary="Change a course")
    async def update_course(
        self,
        request: AdminRequest,
        db_session: DbSession,
        catalog_cache: CatalogCache,
        course_id: FromPath[uuid.UUID],
        data: JSONBody[CoursePatch],
    ) -> AdminCourseOut:
        updates = changes(data)
        course = await catalog.update_course(
            db_session, await _course(db_session, course_id), **updates
        )
        await commit_admin_write(
            request, db_session, catalog_cache, action="course.update",
            resource_type="course", resource_id=course.id, details=_plain(updates),
        )  # fmt: skip
        return admin_course(course)

    @delete("/{course_id:uuid}", operation_id="adminDeleteCourse", status_code=HTTP_204_NO_CONTENT)
    async def delete_course(
        self,
        request: AdminRequest,
        db_session: DbSession,
        catalog_cache: CatalogCache,
        course_id: FromPath[uuid.UUID],
    ) -> None:
        """Delete a course and its lessons (enrollments and progress go with it)."""
        course = await _course(db_session, course_id)
        await catalog.delete_course(db_session, course)
        await commit_admin_write(
            request, db_session, catalog_cache, action="course.delete",
            resource_type="course", resource_id=course_id, details={"title": course.title},
        )  # fmt: skip

    @put(
        "/{course_id:uuid}/status",
        operation_id="adminSetCourseStatus",
        summary="Publish or archive",
    )
    async def set_status(
        self,
        request: AdminRequest,
        db_session: DbSession,
        catalog_cache: CatalogCache,
        course_id: FromPath[uuid.UUID],
        data: JSONBody[StatusIn],
    ) -> AdminCourseOut:
        """DRAFT → PUBLISHED → ARCHIVED → PUBLISHED. Publishing needs one lesson for every day
        of the course's duration. Any other move is a 409."""
        course = await _course(db_session, course_id)
        previous = course.status
        course = await catalog.change_status(db_session, course, data.status)
        await commit_admin_write(
            request, db_session, catalog_cache, action="course.status",
            resource_type="course", resource_id=course.id,
            details={"from": previous.value, "to": course.status.value},
        )  # fmt: skip
        return admin_course(course)

    @post(
        "/{course_id:uuid}/lessons",
        operation_id="adminCreateLesson",
        status_code=HTTP_201_CREATED,
        summary="Add a lesson",
    )
    async def create_lesson(
        self,
        request: AdminRequest,
        db_session: DbSession,
        catalog_cache: CatalogCache,
        course_id: FromPath[uuid.UUID],
        data: JSONBody[LessonIn],
    ) -> AdminLessonOut:
        """Markdown is rendered to sanitised HTML."""
        fields = _plain({name: getattr(data, name) for name in data.__struct_fields__})
        lesson = await catalog.add_lesson(
            db_session, await _course(db_session, course_id), **fields
        )
        await commit_admin_write(
            request, db_session, catalog_cache, action="lesson.create",
            resource_type="lesson", resource_id=lesson.id,
            details={"course_id": str(course_id), "day": lesson.day_number},
        )  # fmt: skip
        return admin_lesson(lesson)


class LessonAdminController(Controller):
    path = "/admin/lessons"
    tags = ["Admin: content"]
    guards = [admin]
    security = [{"BearerToken": []}]

    @patch("/{lesson_id:uuid}", operation_id="adminUpdateLesson", summary="Change a lesson")
    async def update_lesson(
        self,
        request: AdminRequest,
        db_session: DbSession,
        catalog_cache: CatalogCache,
        lesson_id: FromPath[uuid.UUID],
        data: JSONBody[LessonPatch],
    ) -> AdminLessonOut:
        updates = _plain(changes(data))
        lesson = await catalog.get_lesson_by_id(db_session, lesson_id)
        lesson = await catalog.update_lesson(db_session, lesson, **updates)
        await commit_admin_write(
            request, db_session, catalog_cache, action="lesson.update",
            resource_type="lesson", resource_id=lesson.id, details={"fields": sorted(updates)},
        )  # fmt: skip
        return admin_lesson(lesson)

    @delete("/{lesson_id:uuid}", operation_id="adminDeleteLesson", status_code=HTTP_204_NO_CONTENT)
    async def delete_lesson(
        self,
        request: AdminRequest,
        db_session: DbSession,
        catalog_cache: CatalogCache,
        lesson_id: FromPath[uuid.UUID],
    ) -> None:
        lesson = await catalog.get_lesson_by_id(db_session, lesson_id)
        await catalog.delete_lesson(db_session, lesson)
        await commit_admin_write(
            request, db_session, catalog_cache, action="lesson.delete",
            resource_type="lesson", resource_id=lesson_id,
            details={"course_id": str(lesson.course_id), "day": lesson.day_number},
        )  # fmt: skip


class CategoryAdminController(Controller):
    path = "/admin/categories"
    tags = ["Admin: content"]
    guards = [admin]
    security = [{"BearerToken": []}]

    @post(
        "/",
        operation_id="adminCreateCategory",
        status_code=HTTP_201_CREATED,
        responses={409: ResponseSpec(None, description="A category has this name or slug")},
    )
    async def create_category(
        self,
        request: AdminRequest,
        db_session: DbSession,
        catalog_cache: CatalogCache,
        data: JSONBody[CategoryIn],
    ) -> CategoryOut:
        fields = {name: getattr(data, name) for name in data.__struct_fields__}
        category = await catalog.create_category(db_session, **fields)
        await commit_admin_write(
            request, db_session, catalog_cache, action="category.create",
            resource_type="category", resource_id=category.id, details={"name": category.name},
        )  # fmt: skip
        return CategoryOut(
            category.id, category.slug, category.name, category.description, category.sort_order, 0
        )

    @patch(
        "/{category_id:uuid}",
        operation_id="adminUpdateCategory",
        responses={409: ResponseSpec(None, description="Another category has this name or slug")},
    )
    async def update_category(
        self,
        request: AdminRequest,
        db_session: DbSession,
        catalog_cache: CatalogCache,
        category_id: FromPath[uuid.UUID],
        data: JSONBody[CategoryPatch],
    ) -> CategoryOut:
        updates = changes(data)
        category = await catalog.get_category_or_404(db_session, category_id)
        category = await catalog.update_category(db_session, category, **updates)
        await commit_admin_write(
            request, db_session, catalog_cache, action="category.update",
            resource_type="category", resource_id=category.id, details=_plain(updates),
        )  # fmt: skip
        count = await db_session.scalar(
            select(func.count()).where(
                Course.category_id == category.id, Course.status == CourseStatus.PUBLISHED
            )
        )
        return CategoryOut(
            category.id,
            category.slug,
            category.name,
            category.description,
            category.sort_order,
            int(count or 0),
        )

    @delete(
        "/{category_id:uuid}", operation_id="adminDeleteCategory", status_code=HTTP_204_NO_CONTENT
    )
    async def delete_category(
        self,
        request: AdminRequest,
        db_session: DbSession,
        catalog_cache: CatalogCache,
        category_id: FromPath[uuid.UUID],
    ) -> None:
        """Its courses stay, without a category."""
        category = await catalog.get_category_or_404(db_session, category_id)
        await catalog.delete_category(db_session, category)
        await commit_admin_write(
            request, db_session, catalog_cache, action="category.delete",
            resource_type="category", resource_id=category_id, details={"name": category.name},
        )  # fmt: skip
