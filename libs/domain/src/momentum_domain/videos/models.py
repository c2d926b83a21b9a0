"""A lesson's video: its narration script and the life of its render, from PENDING to a stored
MP4 (or FAILED), claimed by the video workers under leases."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from momentum_domain.base import Base, Timestamps, UUIDPrimaryKey, str_enum


class VideoJobStatus(enum.StrEnum):
    PENDING = "PENDING"
    SUBMITTED = "SUBMITTED"
    PROCESSING = "PROCESSING"
    DOWNLOADING = "DOWNLOADING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


# Rendering at the provider: each holds one of the provider's places.
AT_PROVIDER = (VideoJobStatus.SUBMITTED, VideoJobStatus.PROCESSING)
# At the provider or being downloaded from it.
IN_FLIGHT = (*AT_PROVIDER, VideoJobStatus.DOWNLOADING)
# Not finished: a new video may not be asked for meanwhile.
IN_PROGRESS = (*IN_FLIGHT, VideoJobStatus.PENDING)


class LessonVideoScript(UUIDPrimaryKey, Timestamps, Base):
    """A lesson's narration script and the life of its video, claimed by workers with leases."""

    __tablename__ = "lesson_video_scripts"
    __table_args__ = (
        Index("ix_lesson_video_scripts_claim", "status", "lease_expires_at"),
        Index("ix_lesson_video_scripts_lesson_id", "lesson_id"),
    )

    lesson_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lessons.id", ondelete="CASCADE"))
    job_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("course_generation_jobs.id", ondelete="SET NULL")
    )
    script: Mapped[str] = mapped_column(Text)
    provider: Mapped[str] = mapped_column(String(40))
    provider_video_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    status: Mapped[VideoJobStatus] = mapped_column(
        str_enum(VideoJobStatus, "video_job_status"), default=VideoJobStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    storage_key: Mapped[str | None] = mapped_column(Text)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    lease_owner: Mapped[str | None] = mapped_column(String(120))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_poll_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    trace_context: Mapped[dict[str, Any]] = mapped_column(default=dict)
