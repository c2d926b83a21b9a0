"""What an author hands the catalog: a new course, lesson or category (a draft), or the fields
of one to change (changes: a field left ``KEEP`` stays as it is, so a PATCH changes only what
it sent)."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field, fields
from typing import Any

from momentum_domain.catalog.models import CoursePacing, VideoStatus


class Keep(enum.Enum):
    KEEP = "keep"


KEEP = Keep.KEEP


def sent(changes: CourseChanges | LessonChanges | CategoryChanges) -> dict[str, Any]:
    """The fields of a changes dataclass that are to change, by name."""
    return {
        f.name: value for f in fields(changes) if (value := getattr(changes, f.name)) is not KEEP
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class NewCourse:
    title: str
    duration_days: int
    description: str = ""
    category_id: uuid.UUID | None = None
    slug: str | None = None  # from the title when not given
    price_cents: int = 0
    currency: str = "usd"
    is_premium: bool = False
    thumbnail_url: str | None = None
    learning_outcomes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class CourseChanges:
    title: str | Keep = KEEP
    duration_days: int | Keep = KEEP
    description: str | Keep = KEEP
    category_id: uuid.UUID | Keep | None = KEEP
    slug: str | Keep = KEEP
    price_cents: int | Keep = KEEP
    currency: str | Keep = KEEP
    is_premium: bool | Keep = KEEP
    pacing: CoursePacing | Keep = KEEP
    thumbnail_url: str | Keep | None = KEEP
    learning_outcomes: list[str] | Keep = KEEP


@dataclass(frozen=True, slots=True, kw_only=True)
class NewLesson:
    day_number: int
    title: str
    content_markdown: str = ""
    action_items: list[dict[str, Any]] = field(default_factory=list)
    resources: list[dict[str, Any]] = field(default_factory=list)
    # A generated course's lessons wait for their videos (PENDING); an author's have none.
    video_status: VideoStatus = VideoStatus.NONE


@dataclass(frozen=True, slots=True, kw_only=True)
class LessonChanges:
    day_number: int | Keep = KEEP
    title: str | Keep = KEEP
    content_markdown: str | Keep = KEEP
    action_items: list[dict[str, Any]] | Keep = KEEP
    resources: list[dict[str, Any]] | Keep = KEEP


@dataclass(frozen=True, slots=True, kw_only=True)
class NewCategory:
    name: str
    slug: str | None = None  # from the name when not given
    description: str = ""
    sort_order: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class CategoryChanges:
    name: str | Keep = KEEP
    slug: str | Keep = KEEP
    description: str | Keep = KEEP
    sort_order: int | Keep = KEEP


__all__ = [
    "KEEP",
    "CategoryChanges",
    "CourseChanges",
    "Keep",
    "LessonChanges",
    "NewCategory",
    "NewCourse",
    "NewLesson",
    "sent",
]
