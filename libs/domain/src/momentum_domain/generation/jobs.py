"""An administrator's generation jobs: requested (with their first steps dispatched), listed,
read step by step, cancelled and retried. Each use case audits and commits; the steps it
dispatches are announced (``StepsReady``) for the process to send once the commit stands."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.audit.service import RequestOrigin, audit
from momentum_domain.catalog.models import Category
from momentum_domain.config import Settings
from momentum_domain.errors import Conflict, NotFound, TooManyRequests, Unprocessable
from momentum_domain.generation.dispatch import (
    FINISHED_JOB,
    dispatch,
    job_steps,
    locked_job,
    refresh_summary,
)
from momentum_domain.generation.events import StepsReady
from momentum_domain.generation.models import (
    CourseGenerationJob,
    GenerationJobDocument,
    GenerationStep,
    JobStatus,
    PdfReferenceDocument,
    StepStatus,
)
from momentum_domain.generation.schemas import JobParameters
from momentum_domain.kit.pagination import Paged, PageRequest, paginate
from momentum_domain.kit.unit_of_work import commit, publish
from momentum_domain.users.models import User


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job with every step and the reference documents it was given."""

    job: CourseGenerationJob
    steps: list[GenerationStep]
    documents: list[tuple[GenerationJobDocument, PdfReferenceDocument]]


class GenerationJobs:
    async def request_job(
        self,
        session: AsyncSession,
        settings: Settings,
        params: JobParameters,
        *,
        actor_id: uuid.UUID,
        origin: RequestOrigin | None,
        idempotency_key: str | None,
        trace_context: dict[str, str],
    ) -> CourseGenerationJob:
        """Create a job and all its steps and start it. A repeated idempotency key returns the
        original job, unchanged. At most N jobs per admin per (UTC) day."""
        # The admin's row lock serialises their submissions: the quota cannot be raced past.
        await session.execute(select(User.id).where(User.id == actor_id).with_for_update())
        scoped_key = f"{actor_id}:{idempotency_key}" if idempotency_key else None
        if scoped_key:
            existing = await session.scalar(
                select(CourseGenerationJob).where(CourseGenerationJob.idempotency_key == scoped_key)
            )
            if existing is not None:
                await commit(session)
                return existing
        await _check_quota(session, settings, actor_id)
        await _check_references(session, params)
        job = CourseGenerationJob(
            requested_by=actor_id,
            idempotency_key=scoped_key,
            parameters=params.model_dump(mode="json"),
            status=JobStatus.QUEUED,
            budget_usd=Decimal(str(settings.generation_job_budget_usd)),
            trace_context=trace_context,
            steps={},
        )
        session.add(job)
        await session.flush()
        session.add_all(
            GenerationStep(job_id=job.id, kind=kind, day_number=day, status=StepStatus.PENDING)
            for kind, day in job_steps(params.duration_days)
        )
        session.add_all(
            GenerationJobDocument(job_id=job.id, document_id=doc_id, used_in_days=[])
            for doc_id in params.reference_document_ids
        )
        await session.flush()
        ready = await dispatch(session, settings, await locked_job(session, job.id))
        await audit.record(
            session, actor_id=actor_id, action="generation.queue",
            resource_type="generation_job", resource_id=job.id, origin=origin,
            details={"topic": params.topic, "days": params.duration_days},
        )  # fmt: skip
        publish(session, StepsReady(tuple(ready)))
        await commit(session)
        return job

    async def list_jobs(
        self, session: AsyncSession, status: JobStatus | None, page: PageRequest
    ) -> Paged[CourseGenerationJob]:
        """Newest first."""
        stmt = select(CourseGenerationJob)
        if status:
            stmt = stmt.where(CourseGenerationJob.status == status)
        order = (CourseGenerationJob.created_at.desc(), CourseGenerationJob.id.desc())
        return await paginate(session, stmt, page, order)

    async def get_job(self, session: AsyncSession, job_id: uuid.UUID) -> JobRecord:
        job = await session.get(CourseGenerationJob, job_id)
        if job is None:
            raise NotFound("No such generation job.")
        steps = await session.scalars(
            select(GenerationStep)
            .where(GenerationStep.job_id == job_id)
            .order_by(GenerationStep.day_number, GenerationStep.kind)
        )
        documents = await session.execute(
            select(GenerationJobDocument, PdfReferenceDocument)
            .join(
                PdfReferenceDocument, PdfReferenceDocument.id == GenerationJobDocument.document_id
            )
            .where(GenerationJobDocument.job_id == job_id)
        )
        return JobRecord(job, list(steps), [(link, doc) for link, doc in documents.all()])

    async def cancel_job(
        self,
        session: AsyncSession,
        job_id: uuid.UUID,
        *,
        actor_id: uuid.UUID,
        origin: RequestOrigin | None,
    ) -> CourseGenerationJob:
        """Steps not yet running stop here; a running step keeps its result but starts
        nothing."""
        job = await locked_job(session, job_id)
        if job.status in FINISHED_JOB:
            raise Conflict(f"The job is already {job.status.value}.")
        now = datetime.now(UTC)
        job.status = JobStatus.CANCELLED
        job.finished_at = now
        await session.execute(
            update(GenerationStep)
            .where(
                GenerationStep.job_id == job.id,
                GenerationStep.status.in_((StepStatus.PENDING, StepStatus.QUEUED)),
            )
            .values(status=StepStatus.CANCELLED, finished_at=now)
        )
        await refresh_summary(session, job)
        await audit.record(
            session, actor_id=actor_id, action="generation.cancel",
            resource_type="generation_job", resource_id=job.id, origin=origin,
        )  # fmt: skip
        await commit(session)
        return job

    async def retry_job(
        self,
        session: AsyncSession,
        settings: Settings,
        job_id: uuid.UUID,
        *,
        actor_id: uuid.UUID,
        origin: RequestOrigin | None,
    ) -> CourseGenerationJob:
        """Resume a failed job from where it failed: finished steps are kept."""
        job = await locked_job(session, job_id)
        if job.status is not JobStatus.FAILED:
            raise Conflict(f"Only failed jobs can be retried; this one is {job.status.value}.")
        await session.execute(
            update(GenerationStep)
            .where(
                GenerationStep.job_id == job.id,
                GenerationStep.status.in_((StepStatus.FAILED, StepStatus.CANCELLED)),
            )
            .values(status=StepStatus.PENDING, error=None, finished_at=None)
        )
        job.status = JobStatus.RUNNING
        job.error = None
        job.finished_at = None
        ready = await dispatch(session, settings, job)
        await audit.record(
            session, actor_id=actor_id, action="generation.retry",
            resource_type="generation_job", resource_id=job.id, origin=origin,
        )  # fmt: skip
        publish(session, StepsReady(tuple(ready)))
        await commit(session)
        return job


async def _check_quota(session: AsyncSession, settings: Settings, admin_id: uuid.UUID) -> None:
    day_start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    today = await session.scalar(
        select(func.count()).where(
            CourseGenerationJob.requested_by == admin_id,
            CourseGenerationJob.created_at >= day_start,
        )
    )
    quota = settings.generation_jobs_per_admin_per_day
    if (today or 0) >= quota:
        retry_after = int((day_start + timedelta(days=1) - datetime.now(UTC)).total_seconds())
        raise TooManyRequests(
            f"Daily generation quota reached ({quota} jobs per admin per day).",
            retry_after=max(retry_after, 1),
        )


async def _check_references(session: AsyncSession, params: JobParameters) -> None:
    if params.category_id and await session.get(Category, params.category_id) is None:
        raise Unprocessable(
            "No such category.",
            extra={
                "errors": [
                    {"field": "category_id", "source": "body", "message": "Unknown category"}
                ]
            },
        )
    wanted = set(params.reference_document_ids)
    if wanted:
        found = set(
            await session.scalars(
                select(PdfReferenceDocument.id).where(PdfReferenceDocument.id.in_(wanted))
            )
        )
        if missing := wanted - found:
            raise Unprocessable(
                "Unknown reference documents: " + ", ".join(sorted(map(str, missing))),
                extra={
                    "errors": [
                        {
                            "field": "reference_document_ids",
                            "source": "body",
                            "message": "Unknown document",
                        }
                    ]
                },
            )


generation_jobs = GenerationJobs()
