from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from litestar.datastructures import UploadFile

from momentum_domain.generation.jobs import JobRecord
from momentum_domain.generation.models import (
    CourseGenerationJob,
    GenerationStep,
    JobStatus,
    PdfReferenceDocument,
    StepStatus,
)
from momentum_domain.notifications.models import OutboxMessage


class JobOut(msgspec.Struct):
    id: uuid.UUID
    status: JobStatus
    parameters: dict[str, Any]
    step_counts: dict[str, Any]
    course_id: uuid.UUID | None
    review_url: str | None
    error: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    budget_usd: float | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class StepOut(msgspec.Struct):
    kind: str
    day: int
    status: StepStatus
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    error: str | None


class LessonState(msgspec.Struct):
    day: int
    lesson: StepStatus
    script: StepStatus


class JobDocumentOut(msgspec.Struct):
    id: uuid.UUID
    filename: str
    used_in_days: list[int]


class JobDetail(JobOut, kw_only=True):
    steps: list[StepOut]
    lessons: list[LessonState]
    documents: list[JobDocumentOut]


@dataclass
class ReferenceUpload:
    """A reference PDF, sent as multipart/form-data."""

    file: UploadFile


class DocumentOut(msgspec.Struct):
    id: uuid.UUID
    filename: str
    size_bytes: int
    sha256: str
    page_count: int
    text_characters: int
    created_at: datetime


class OutboxOut(msgspec.Struct):
    id: uuid.UUID
    channel: str
    recipient: str
    subject: str
    body: str
    payload: dict[str, Any]
    status: str
    created_at: datetime
    sent_at: datetime | None


def job_out(job: CourseGenerationJob, public_url: str) -> JobOut:
    return JobOut(**_job_fields(job, public_url))


def _job_fields(job: CourseGenerationJob, public_url: str) -> dict[str, Any]:
    return {
        "id": job.id,
        "status": job.status,
        "parameters": job.parameters,
        "step_counts": job.steps,
        "course_id": job.course_id,
        "review_url": f"{public_url}/admin/courses/{job.course_id}" if job.course_id else None,
        "error": job.error,
        "input_tokens": job.input_tokens,
        "output_tokens": job.output_tokens,
        "cost_usd": float(job.cost_usd),
        "budget_usd": float(job.budget_usd) if job.budget_usd is not None else None,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


def step_out(step: GenerationStep) -> StepOut:
    duration = None
    if step.started_at and step.finished_at:
        duration = round((step.finished_at - step.started_at).total_seconds() * 1000)
    return StepOut(
        kind=step.kind.value,
        day=step.day_number,
        status=step.status,
        attempts=step.attempts,
        started_at=step.started_at,
        finished_at=step.finished_at,
        duration_ms=duration,
        input_tokens=step.input_tokens,
        output_tokens=step.output_tokens,
        cost_usd=float(step.cost_usd),
        error=step.error,
    )


def job_detail(record: JobRecord, public_url: str) -> JobDetail:
    steps = record.steps
    by_key = {(s.kind.value, s.day_number): s.status for s in steps}
    days = sorted({s.day_number for s in steps if s.day_number})
    return JobDetail(
        **_job_fields(record.job, public_url),
        steps=[step_out(step) for step in steps],
        lessons=[LessonState(d, by_key[("LESSON", d)], by_key[("SCRIPT", d)]) for d in days],
        documents=[
            JobDocumentOut(doc.id, doc.filename, list(link.used_in_days))
            for link, doc in record.documents
        ],
    )


def document_out(document: PdfReferenceDocument) -> DocumentOut:
    return DocumentOut(
        id=document.id,
        filename=document.filename,
        size_bytes=document.size_bytes,
        sha256=document.sha256,
        page_count=document.page_count,
        text_characters=len(document.extracted_text),
        created_at=document.created_at,
    )


def outbox_out(message: OutboxMessage) -> OutboxOut:
    return OutboxOut(
        id=message.id,
        channel=message.channel,
        recipient=message.recipient,
        subject=message.subject,
        body=message.body,
        payload=message.payload,
        status=message.status.value,
        created_at=message.created_at,
        sent_at=message.sent_at,
    )
