from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import msgspec

from momentum_domain.catalog.models import Category, Course, CourseStatus
from momentum_domain.catalog.service import CourseView, has_video, price_kind
from momentum_domain.kit.storage import absolute_media_url


class CategoryRef(msgspec.Struct):
    id: uuid.UUID
    slug: str
    name: str


class CategoryOut(msgspec.Struct):
    id: uuid.UUID
    slug: str
    name: str
    description: str
    sort_order: int
    published_course_count: int


class CourseSummary(msgspec.Struct):
    id: uuid.UUID
    slug: str
    title: str
    description: str
    category: CategoryRef | None
    duration_days: int
    price_cents: int
    currency: str
    is_premium: bool
    pricing: Literal["free", "premium", "paid"]
    thumbnail_url: str | None
    rating_average: float
    rating_count: int
    enrollment_count: int
    published_at: datetime | None


class CoursePage(msgspec.Struct):
    items: list[CourseSummary]
    total: int
    limit: int
    offset: int


class LessonOutline(msgspec.Struct):
    day: int
    title: str
    has_video: bool


class CourseDetail(CourseSummary, kw_only=True):
    status: CourseStatus
    learning_outcomes: list[Any]
    lessons: list[LessonOutline]
    is_enrolled: bool = False


class MyProgress(msgspec.Struct):
    completed: bool
    completed_at: datetime | None
    time_spent_seconds: int
    notes: str | None


class LessonOut(msgspec.Struct):
    id: uuid.UUID
    course_id: uuid.UUID
    day: int
    title: str
    content_markdown: str
    content_html: str
    action_items: list[Any]
    resources: list[Any]
    video_status: str
    # A short-lived link, signed for the caller (see getMedia), valid until video_url_expires_at.
    video_url: str | None
    video_duration_seconds: int | None
    is_preview: bool
    my_progress: MyProgress | None
    video_url_expires_at: datetime | None = None


def category_ref(category: Category | None) -> CategoryRef | None:
    return CategoryRef(category.id, category.slug, category.name) if category else None


def course_summary(course: Course, category: Category | None, public_url: str) -> CourseSummary:
    return CourseSummary(**_summary_fields(course, category, public_url))


def course_detail(view: CourseView, public_url: str) -> CourseDetail:
    return CourseDetail(
        **_summary_fields(view.course, view.category, public_url),
        status=view.course.status,
        learning_outcomes=view.course.learning_outcomes,
        lessons=[
            LessonOutline(lesson.day_number, lesson.title, has_video(lesson))
            for lesson in view.lessons
        ],
    )


def _summary_fields(course: Course, category: Category | None, public_url: str) -> dict[str, Any]:
    return {
        "id": course.id,
        "slug": course.slug,
        "title": course.title,
        "description": course.description,
        "category": category_ref(category),
        "duration_days": course.duration_days,
        "price_cents": course.price_cents,
        "currency": course.currency,
        "is_premium": course.is_premium,
        "pricing": price_kind(course),
        "thumbnail_url": absolute_media_url(course.thumbnail_url, public_url),
        "rating_average": float(course.rating_average),
        "rating_count": course.rating_count,
        "enrollment_count": course.enrollment_count,
        "published_at": course.published_at,
    }
