from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from momentum_api.schemas import Strict
from momentum_domain.catalog.authoring import CATEGORY_SLUG_MAX, COURSE_SLUG_MAX
from momentum_domain.catalog.models import Course, CoursePacing, CourseStatus, Lesson
from momentum_domain.users.models import Role, User

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Description = Annotated[str, msgspec.Meta(max_length=10_000)]
SLUG_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
Slug = Annotated[str, msgspec.Meta(min_length=1, max_length=COURSE_SLUG_MAX, pattern=SLUG_PATTERN)]
CategorySlug = Annotated[
    str, msgspec.Meta(min_length=1, max_length=CATEGORY_SLUG_MAX, pattern=SLUG_PATTERN)
]
Url = Annotated[str, msgspec.Meta(max_length=2_000, pattern=r"^https?://\S+$")]
Currency = Annotated[str, msgspec.Meta(pattern=r"^[a-z]{3}$")]
PriceCents = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
Day = Annotated[int, msgspec.Meta(ge=1, le=21)]
Markdown = Annotated[str, msgspec.Meta(max_length=200_000)]
Duration = Literal[7, 14, 21]
Outcome = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
UNSET: Any = msgspec.UNSET


class ActionItem(Strict):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class Resource(Strict):
    title: Title
    url: Url


class CourseIn(Strict):
    title: Title
    duration_days: Duration
    description: Description = ""
    category_id: uuid.UUID | None = None
    slug: Slug | None = None
    price_cents: PriceCents = 0
    currency: Currency = "usd"
    is_premium: bool = False
    thumbnail_url: Url | None = None
    learning_outcomes: Annotated[list[Outcome], msgspec.Meta(max_length=20)] = []


class CoursePatch(Strict):
    title: Title = UNSET
    duration_days: Duration = UNSET
    description: Description = UNSET
    category_id: uuid.UUID | None = UNSET
    slug: Slug = UNSET
    price_cents: PriceCents = UNSET
    currency: Currency = UNSET
    is_premium: bool = UNSET
    pacing: CoursePacing = UNSET
    thumbnail_url: Url | None = UNSET
    learning_outcomes: Annotated[list[Outcome], msgspec.Meta(max_length=20)] = UNSET


class StatusIn(Strict):
    status: CourseStatus


class LessonIn(Strict):
    day_number: Day
    title: Title
    content_markdown: Markdown = ""
    action_items: Annotated[list[ActionItem], msgspec.Meta(max_length=20)] = []
    resources: Annotated[list[Resource], msgspec.Meta(max_length=20)] = []


class LessonPatch(Strict):
    day_number: Day = UNSET
    title: Title = UNSET
    content_markdown: Markdown = UNSET
    action_items: Annotated[list[ActionItem], msgspec.Meta(max_length=20)] = UNSET
    resources: Annotated[list[Resource], msgspec.Meta(max_length=20)] = UNSET


class CategoryIn(Strict):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
    slug: CategorySlug | None = None
    description: Description = ""
    sort_order: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 0


class CategoryPatch(Strict):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=120)] = UNSET
    slug: CategorySlug = UNSET
    description: Description = UNSET
    sort_order: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = UNSET


class RoleIn(Strict):
    role: Role


class AdminLessonOut(msgspec.Struct):
    id: uuid.UUID
    course_id: uuid.UUID
    day_number: int
    title: str
    content_markdown: str
    content_html: str
    action_items: list[Any]
    resources: list[Any]
    video_status: str
    video_url: str | None
    updated_at: datetime


class AdminCourseOut(msgspec.Struct):
    id: uuid.UUID
    slug: str
    title: str
    description: str
    category_id: uuid.UUID | None
    duration_days: int
    status: CourseStatus
    price_cents: int
    currency: str
    is_premium: bool
    pacing: CoursePacing
    thumbnail_url: str | None
    learning_outcomes: list[Any]
    created_by: uuid.UUID | None
    published_at: datetime | None
    created_at: datetime
    updated_at: datetime


class AdminCourseDetail(AdminCourseOut, kw_only=True):
    lessons: list[AdminLessonOut]


class AdminUserOut(msgspec.Struct):
    id: uuid.UUID
    email: str
    name: str
    role: Role
    identity_provider: str
    email_verified: bool
    created_at: datetime
    last_login_at: datetime | None


def admin_course(course: Course) -> AdminCourseOut:
    return AdminCourseOut(**_course_fields(course))


def admin_course_detail(course: Course, lessons: list[Lesson]) -> AdminCourseDetail:
    return AdminCourseDetail(**_course_fields(course), lessons=[admin_lesson(x) for x in lessons])


def _course_fields(course: Course) -> dict[str, Any]:
    return {name: getattr(course, name) for name in AdminCourseOut.__struct_fields__}


def admin_lesson(lesson: Lesson) -> AdminLessonOut:
    return AdminLessonOut(
        id=lesson.id,
        course_id=lesson.course_id,
        day_number=lesson.day_number,
        title=lesson.title,
        content_markdown=lesson.content_markdown,
        content_html=lesson.content_html,
        action_items=lesson.action_items,
        resources=lesson.resources,
        video_status=lesson.video_status.value,
        video_url=lesson.video_url,
        updated_at=lesson.updated_at,
    )


def admin_user(user: User) -> AdminUserOut:
    return AdminUserOut(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        identity_provider=user.identity_provider,
        email_verified=user.email_verified,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
    )
