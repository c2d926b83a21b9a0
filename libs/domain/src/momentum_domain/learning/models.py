from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from momentum_domain.base import Base, Timestamps, UUIDPrimaryKey, str_enum


class EnrollmentStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


class Enrollment(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "enrollments"
    __table_args__ = (
        UniqueConstraint("user_id", "course_id"),
        Index("ix_enrollments_course_id", "course_id"),
        Index("ix_enrollments_created_at", "created_at"),
        Index(
            "ix_enrollments_completed_at",
            "completed_at",
            postgresql_where=text("completed_at IS NOT NULL"),
        ),
        CheckConstraint("completion_percent BETWEEN 0 AND 100", name="completion_percent_in_range"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    status: Mapped[EnrollmentStatus] = mapped_column(
        str_enum(EnrollmentStatus, "enrollment_status"), default=EnrollmentStatus.ACTIVE
    )
    completion_percent: Mapped[int] = mapped_column(Integer, default=0)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_accessed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Progress(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "progress"
    __table_args__ = (
        UniqueConstraint("user_id", "lesson_id"),
        Index("ix_progress_user_id_course_id", "user_id", "course_id"),
        Index("ix_progress_lesson_id", "lesson_id"),
        # A learner's completions by day: streaks, badges, analytics.
        Index(
            "ix_progress_user_id_completed_at",
            "user_id",
            "completed_at",
            postgresql_where=text("completed_at IS NOT NULL"),
        ),
        CheckConstraint("time_spent_seconds >= 0", name="time_spent_not_negative"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    lesson_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lessons.id", ondelete="CASCADE"))
    # Denormalised from the lesson so a learner's progress in a course is one index range.
    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    time_spent_seconds: Mapped[int] = mapped_column(Integer, default=0)
    notes: Mapped[str | None] = mapped_column(Text)
