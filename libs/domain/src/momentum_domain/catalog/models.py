from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from momentum_domain.base import Base, Timestamps, UUIDPrimaryKey, str_enum

COURSE_DURATIONS = (7, 14, 21)


class CoursePacing(enum.StrEnum):
    DAILY = "daily"  # one lesson opens each day (learning.schedule)
    SELF_PACED = "self_paced"  # every day opens on enrollment


class CourseStatus(enum.StrEnum):
    DRAFT = "DRAFT"
    PUBLISHED = "PUBLISHED"
    ARCHIVED = "ARCHIVED"


class VideoStatus(enum.StrEnum):
    NONE = "NONE"
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    READY = "READY"
    FAILED = "FAILED"


class Category(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "categories"

    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class Course(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "courses"
    __table_args__ = (
        CheckConstraint(f"duration_days IN {COURSE_DURATIONS}", name="valid_duration"),
        CheckConstraint("price_cents >= 0", name="price_not_negative"),
        CheckConstraint("rating_count >= 0", name="rating_count_not_negative"),
        Index("ix_courses_created_at", text("created_at DESC")),
        Index("ix_courses_search", "search_vector", postgresql_using="gin"),
        # The catalog's default listing: published courses, newest first.
        Index("ix_courses_status_published_at", "status", "published_at"),
    )

    slug: Mapped[str] = mapped_column(String(200), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    learning_outcomes: Mapped[list[Any]] = mapped_column(default=list)
    category_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("categories.id", ondelete="SET NULL"), index=True
    )
    duration_days: Mapped[int] = mapped_column(Integer)
    status: Mapped[CourseStatus] = mapped_column(
        str_enum(CourseStatus, "course_status"), default=CourseStatus.DRAFT, index=True
    )
    price_cents: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="usd")
    is_premium: Mapped[bool] = mapped_column(Boolean, default=False)
    pacing: Mapped[CoursePacing] = mapped_column(
        str_enum(CoursePacing, "course_pacing"),
        default=CoursePacing.DAILY,
        server_default=CoursePacing.DAILY.value,
    )
    thumbnail_url: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rating_average: Mapped[Decimal] = mapped_column(Numeric(3, 2), default=Decimal("0"))
    rating_count: Mapped[int] = mapped_column(Integer, default=0)
    enrollment_count: Mapped[int] = mapped_column(Integer, default=0)
    search_vector: Mapped[str] = mapped_column(
        TSVECTOR,
        Computed(
            "setweight(to_tsvector('english', coalesce(title, '')), 'A') || "
            "setweight(to_tsvector('english', coalesce(description, '')), 'B')",
            persisted=True,
        ),
        deferred=True,
    )


class Lesson(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "lessons"
    __table_args__ = (
        UniqueConstraint("course_id", "day_number"),
        CheckConstraint("day_number BETWEEN 1 AND 21", name="valid_day_number"),
    )

    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    day_number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    content_markdown: Mapped[str] = mapped_column(Text, default="")
    content_html: Mapped[str] = mapped_column(Text, default="")
    action_items: Mapped[list[Any]] = mapped_column(default=list)
    resources: Mapped[list[Any]] = mapped_column(default=list)
    video_status: Mapped[VideoStatus] = mapped_column(
        str_enum(VideoStatus, "video_status"), default=VideoStatus.NONE
    )
    video_url: Mapped[str | None] = mapped_column(Text)
    video_duration_seconds: Mapped[int | None] = mapped_column(Integer)
    video_error: Mapped[str | None] = mapped_column(Text)
