from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
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
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from momentum_domain.base import Base, CreatedAt, Timestamps, UUIDPrimaryKey, str_enum

Money = Numeric(12, 6)


class JobStatus(enum.StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class StepKind(enum.StrEnum):
    OUTLINE = "OUTLINE"
    LESSON = "LESSON"
    SCRIPT = "SCRIPT"
    THUMBNAIL = "THUMBNAIL"
    SAVE = "SAVE"
    NOTIFY = "NOTIFY"


class StepStatus(enum.StrEnum):
    PENDING = "PENDING"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class CourseGenerationJob(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "course_generation_jobs"
    __table_args__ = (
        Index("ix_course_generation_jobs_requested_by_created_at", "requested_by", "created_at"),
        Index("ix_course_generation_jobs_status", "status"),
    )

    requested_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[JobStatus] = mapped_column(
        str_enum(JobStatus, "job_status"), default=JobStatus.QUEUED
    )
    # Summary of each step for the job API; generation_steps holds the full record.
    steps: Mapped[dict[str, Any]] = mapped_column(default=dict)
    course_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("courses.id", ondelete="SET NULL")
    )
    error: Mapped[str | None] = mapped_column(Text)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_usd: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    budget_usd: Mapped[Decimal | None] = mapped_column(Money)
    trace_context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class GenerationStep(UUIDPrimaryKey, Timestamps, Base):
    """One unit of pipeline work; its result is persisted the moment it is produced, so a
    restarted worker resumes instead of regenerating (and paying twice). A RUNNING step is held
    by ``lease_owner`` until ``lease_expires_at``, which that worker keeps pushing back while
    it runs the step; a step whose lease ran out is taken over."""

    __tablename__ = "generation_steps"
    __table_args__ = (
        UniqueConstraint("job_id", "kind", "day_number"),
        Index("ix_generation_steps_status_lease_expires_at", "status", "lease_expires_at"),
    )

    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("course_generation_jobs.id", ondelete="CASCADE")
    )
    kind: Mapped[StepKind] = mapped_column(str_enum(StepKind, "step_kind"))
    # 0 for course-level steps (outline, thumbnail, save, notify).
    day_number: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[StepStatus] = mapped_column(
        str_enum(StepStatus, "step_status"), default=StepStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict[str, Any] | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_usd: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_owner: Mapped[str | None] = mapped_column(String(120))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LlmCall(UUIDPrimaryKey, CreatedAt, Base):
    """Every model invocation, with its tokens and price, for cost reporting."""

    __tablename__ = "llm_calls"
    __table_args__ = (
        Index("ix_llm_calls_job_id", "job_id"),
        Index("ix_llm_calls_created_at", "created_at"),
    )

    job_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("course_generation_jobs.id", ondelete="SET NULL")
    )
    step_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("generation_steps.id", ondelete="SET NULL")
    )
    provider: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(40))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    succeeded: Mapped[bool] = mapped_column(default=True)


class PdfReferenceDocument(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "pdf_reference_documents"
    __table_args__ = (CheckConstraint("size_bytes > 0", name="size_positive"),)

    uploaded_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    filename: Mapped[str] = mapped_column(String(255))
    storage_key: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    page_count: Mapped[int] = mapped_column(Integer)
    extracted_text: Mapped[str] = mapped_column(Text, default="")


class PdfReferenceChunk(UUIDPrimaryKey, Base):
    """A passage of a reference document; lessons are grounded on the most relevant ones."""

    __tablename__ = "pdf_reference_chunks"
    __table_args__ = (
        UniqueConstraint("document_id", "ordinal"),
        Index("ix_pdf_reference_chunks_search", "search_vector", postgresql_using="gin"),
    )

    document_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("pdf_reference_documents.id", ondelete="CASCADE")
    )
    ordinal: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    search_vector: Mapped[str] = mapped_column(
        TSVECTOR, Computed("to_tsvector('english', text)", persisted=True), deferred=True
    )


class GenerationJobDocument(Base):
    """Which reference documents a job was given, and whether they grounded any lesson."""

    __tablename__ = "generation_job_documents"

    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("course_generation_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    document_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("pdf_reference_documents.id", ondelete="CASCADE"), primary_key=True
    )
    used_in_days: Mapped[list[Any]] = mapped_column(default=list)
