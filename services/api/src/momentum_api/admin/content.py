"""Content management: courses, their lessons and status, and categories. Each write is one
catalog use case (momentum_domain.catalog.service), which audits and commits."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post, put
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

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
from momentum_api.catalog.schemas import CategoryOut
from momentum_api.deps import AppSettings, DbSession
from momentum_api.identity.guards import admin
from momentum_api.identity.principal import Principal
from momentum_api.origin import request_origin
from momentum_api.schemas import Offset, Page, changes
from momentum_domain.catalog.inputs import (
    CategoryChanges,
    CourseChanges,
    LessonChanges,
    NewCategory,
    NewCourse,
    NewLesson,
)
from momentum_domain.catalog.models import Category, CourseStatus
from momentum_domain.catalog.service import catalog
from momentum_domain.kit.pagination import PageRequest

AdminRequest = Request[Principal, Any, Any]


def _category_out(category: Category, published_courses: int) -> CategoryOut:
    return CategoryOut(
        category.id,
        category.slug,
        category.name,
        category.description,
        category.sort_order,
        published_courses,
    )


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
        found = await catalog.list_courses(db_session, status, PageRequest(limit, offset))
        return Page([admin_course(c) for c in found.items], found.total, limit, offset)

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
        settings: AppSettings,
        data: JSONBody[CourseIn],
    ) -> AdminCourseOut:
        course = await catalog.create_course(
            db_session, NewCourse(**msgspec.structs.asdict(data)),
            actor_id=request.user.id, origin=request_origin(request, settings),
        )  # fmt: skip
        return admin_course(course)

    @get("/{course_id:uuid}", operation_id="adminGetCourse", summary="A course with its lessons")
    async def get_course(
        self, db_session: DbSession, course_id: FromPath[uuid.UUID]
    ) -> AdminCourseDetail:
        course, lessons = await catalog.course_with_lessons(db_session, course_id)
        return admin_course_detail(course, lessons)

    @patch("/{course_id:uuid}", operation_id="adminUpdateCourse", summary="Change a course")
    async def update_course(
        self,
        request: AdminRequest,
        db_session: DbSession,
        settings: AppSettings,
        course_id: FromPath[uuid.UUID],
        data: JSONBody[CoursePatch],
    ) -> AdminCourseOut:
        course = await catalog.update_course(
            db_session, course_id, CourseChanges(**changes(data)),
            actor_id=request.user.id, origin=request_origin(request, settings),
        )  # fmt: skip
        return admin_course(course)

    @delete("/{course_id:uuid}", operation_id="adminDeleteCourse", status_code=HTTP_204_NO_CONTENT)
    async def delete_course(
        self,
        request: AdminRequest,
        db_session: DbSession,
        settings: AppSettings,
        course_id: FromPath[uuid.UUID],
    ) -> None:
        """Delete a course and its lessons (enrollments and progress go with it)."""
        await catalog.delete_course(
            db_session, course_id,
            actor_id=request.user.id, origin=request_origin(request, settings),
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
        settings: AppSettings,
        course_id: FromPath[uuid.UUID],
        data: JSONBody[StatusIn],
    ) -> AdminCourseOut:
        """DRAFT → PUBLISHED → ARCHIVED → PUBLISHED. Publishing needs one lesson for every day
        of the course's duration. Any other move is a 409."""
        course = await catalog.set_status(
            db_session, course_id, data.status,
            actor_id=request.user.id, origin=request_origin(request, settings),
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
        settings: AppSettings,
        course_id: FromPath[uuid.UUID],
        data: JSONBody[LessonIn],
    ) -> AdminLessonOut:
        """Markdown is rendered to sanitised HTML."""
        lesson = await catalog.add_lesson(
            db_session, course_id, NewLesson(**msgspec.to_builtins(data)),
            actor_id=request.user.id, origin=request_origin(request, settings),
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
        settings: AppSettings,
        lesson_id: FromPath[uuid.UUID],
        data: JSONBody[LessonPatch],
    ) -> AdminLessonOut:
        lesson = await catalog.update_lesson(
            db_session, lesson_id, LessonChanges(**msgspec.to_builtins(changes(data))),
            actor_id=request.user.id, origin=request_origin(request, settings),
        )  # fmt: skip
        return admin_lesson(lesson)

    @delete("/{lesson_id:uuid}", operation_id="adminDeleteLesson", status_code=HTTP_204_NO_CONTENT)
    async def delete_lesson(
        self,
        request: AdminRequest,
        db_session: DbSession,
        settings: AppSettings,
        lesson_id: FromPath[uuid.UUID],
    ) -> None:
        await catalog.delete_lesson(
            db_session, lesson_id,
            actor_id=request.user.id, origin=request_origin(request, settings),
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
        settings: AppSettings,
        data: JSONBody[CategoryIn],
    ) -> CategoryOut:
        category = await catalog.create_category(
            db_session, NewCategory(**msgspec.structs.asdict(data)),
            actor_id=request.user.id, origin=request_origin(request, settings),
        )  # fmt: skip
        return _category_out(category, 0)

    @patch(
        "/{category_id:uuid}",
        operation_id="adminUpdateCategory",
        responses={409: ResponseSpec(None, description="Another category has this name or slug")},
    )
    async def update_category(
        self,
        request: AdminRequest,
        db_session: DbSession,
        settings: AppSettings,
        category_id: FromPath[uuid.UUID],
        data: JSONBody[CategoryPatch],
    ) -> CategoryOut:
        category, published_courses = await catalog.update_category(
            db_session, category_id, CategoryChanges(**changes(data)),
            actor_id=request.user.id, origin=request_origin(request, settings),
        )  # fmt: skip
        return _category_out(category, published_courses)

    @delete(
        "/{category_id:uuid}", operation_id="adminDeleteCategory", status_code=HTTP_204_NO_CONTENT
    )
    async def delete_category(
        self,
        request: AdminRequest,
        db_session: DbSession,
        settings: AppSettings,
        category_id: FromPath[uuid.UUID],
    ) -> None:
        """Its courses stay, without a category."""
        await catalog.delete_category(
            db_session, category_id,
            actor_id=request.user.id, origin=request_origin(request, settings),
        )  # fmt: skip
