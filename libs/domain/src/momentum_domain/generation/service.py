"""Generation jobs and their steps: the durable state machine of the pipeline.

PostgreSQL holds every job and step. A step is PENDING until its inputs exist, QUEUED once a
message for it is (about to be) on the queue, RUNNING while a worker holds its lease, and
SUCCEEDED with its result persisted, or FAILED. ``advance`` decides what runs next under the
job's row lock, so concurrent completions never dispatch a step twice; callers enqueue the
returned step ids after committing.

A worker renews the leases of the steps it runs every few seconds; the sweeper queues again a
step whose lease ran out (its worker died), and a stopping worker hands its steps back at once.
Every write of a step's outcome is fenced on the lease it was claimed under, so a worker whose
step was taken over writes nothing. Lease times come from the database's clock.

Lock order: a job's row, then its steps' rows, except where a worker records the outcome of a
step it holds (that step, then its job): a step is never claimed while its holder records it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from opentelemetry import metrics
from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain import metric_names
from momentum_domain.catalog.models import Category
from momentum_domain.config import Settings
from momentum_domain.errors import Conflict, NotFound, TooManyRequests, Unprocessable
from momentum_domain.generation.models import (
    CourseGenerationJob,
    GenerationJobDocument,
    GenerationStep,
    JobStatus,
    LlmCall,
    PdfReferenceDocument,
    StepKind,
    StepStatus,
)
from momentum_domain.generation.schemas import JobParameters
from momentum_domain.telemetry import add_after_commit, create_counter
from momentum_domain.users.models import User

IN_FLIGHT = (StepStatus.QUEUED, StepStatus.RUNNING)
FINISHED_JOB = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
# Lessons first, scripts in the slots left: a lesson still has its script to come (the longer
# remaining path), so starting every lesson early finishes the job sooner than waves of days.
DISPATCH_ORDER = {
    StepKind.OUTLINE: 0,
    StepKind.THUMBNAIL: 1,
    StepKind.LESSON: 2,
    StepKind.SCRIPT: 3,
    StepKind.SAVE: 4,
    StepKind.NOTIFY: 5,
}
DAY_STEPS = (StepKind.LESSON, StepKind.SCRIPT)

# Counted when the transaction that moves a job to its outcome (or records a call) commits.
_meter = metrics.get_meter("momentum.generation")
_jobs_finished = create_counter(_meter, metric_names.GENERATION_JOBS_FINISHED)
_jobs_failed = create_counter(_meter, metric_names.GENERATION_JOBS_FAILED)
_cost = create_counter(_meter, metric_names.GENERATION_COST)
_tokens = create_counter(_meter, metric_names.GENERATION_TOKENS)


class StepState(NamedTuple):
    id: uuid.UUID
    kind: StepKind
    day_number: int
    status: StepStatus


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One model invocation, as the pipeline reports it."""

    provider: str
    model: str
    purpose: str
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    latency_ms: int
    succeeded: bool = True


def dependencies(kind: StepKind, day: int, duration: int) -> list[tuple[StepKind, int]]:
    if kind is StepKind.OUTLINE:
        return []
    if kind in (StepKind.LESSON, StepKind.THUMBNAIL):
        return [(StepKind.OUTLINE, 0)]
    if kind is StepKind.SCRIPT:
        return [(StepKind.LESSON, day)]
    if kind is StepKind.SAVE:
        return [(StepKind.SCRIPT, d) for d in range(1, duration + 1)] + [(StepKind.THUMBNAIL, 0)]
    return [(StepKind.SAVE, 0)]


class GenerationService:
    # ---- jobs --------------------------------------------------------------------------

    async def queue_job(
        self,
        session: AsyncSession,
        settings: Settings,
        *,
        admin_id: uuid.UUID,
        params: JobParameters,
        idempotency_key: str | None,
        trace_context: dict[str, str],
    ) -> tuple[CourseGenerationJob, bool]:
        """Create a job and all its steps; returns (job, created). A repeated idempotency key
        returns the original job. At most N jobs per admin per (UTC) day."""
        # The admin's row lock serialises their submissions: the quota cannot be raced past.
        await session.execute(select(User.id).where(User.id == admin_id).with_for_update())
        scoped_key = f"{admin_id}:{idempotency_key}" if idempotency_key else None
        if scoped_key:
            existing = await session.scalar(
                select(CourseGenerationJob).where(CourseGenerationJob.idempotency_key == scoped_key)
            )
            if existing is not None:
                return existing, False
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
        await self._check_references(session, params)

        job = CourseGenerationJob(
            requested_by=admin_id,
            idempotency_key=scoped_key,
            parameters=params.model_dump(mode="json"),
            status=JobStatus.QUEUED,
            budget_usd=Decimal(str(settings.generation_job_budget_usd)),
            trace_context=trace_context,
            steps={},
        )
        session.add(job)
        await session.flush()
        kinds = [(StepKind.OUTLINE, 0), (StepKind.THUMBNAIL, 0)]
        kinds += [(kind, d) for d in range(1, params.duration_days + 1) for kind in DAY_STEPS]
        kinds += [(StepKind.SAVE, 0), (StepKind.NOTIFY, 0)]
        session.add_all(
            GenerationStep(job_id=job.id, kind=kind, day_number=day, status=StepStatus.PENDING)
            for kind, day in kinds
        )
        session.add_all(
            GenerationJobDocument(job_id=job.id, document_id=doc_id, used_in_days=[])
            for doc_id in params.reference_document_ids
        )
        await session.flush()
        return job, True

    async def _check_references(self, session: AsyncSession, params: JobParameters) -> None:
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

    async def get_job(self, session: AsyncSession, job_id: uuid.UUID) -> CourseGenerationJob:
        job = await session.get(CourseGenerationJob, job_id)
        if job is None:
            raise NotFound("No such generation job.")
        return job

    async def list_jobs(
        self, session: AsyncSession, *, status: JobStatus | None, limit: int, offset: int
    ) -> tuple[list[CourseGenerationJob], int]:
        stmt = select(CourseGenerationJob, func.count().over())
        if status:
            stmt = stmt.where(CourseGenerationJob.status == status)
        rows = (
            await session.execute(
                stmt.order_by(CourseGenerationJob.created_at.desc()).limit(limit).offset(offset)
            )
        ).all()
        return [row[0] for row in rows], int(rows[0][1]) if rows else 0

    async def steps(self, session: AsyncSession, job_id: uuid.UUID) -> list[GenerationStep]:
        return list(
            await session.scalars(
                select(GenerationStep)
                .where(GenerationStep.job_id == job_id)
                .order_by(GenerationStep.day_number, GenerationStep.kind)
            )
        )

    async def documents(
        self, session: AsyncSession, job_id: uuid.UUID
    ) -> list[tuple[GenerationJobDocument, PdfReferenceDocument]]:
        rows = await session.execute(
            select(GenerationJobDocument, PdfReferenceDocument)
            .join(
                PdfReferenceDocument, PdfReferenceDocument.id == GenerationJobDocument.document_id
            )
            .where(GenerationJobDocument.job_id == job_id)
        )
        return [(link, doc) for link, doc in rows.all()]

    async def cancel(self, session: AsyncSession, job_id: uuid.UUID) -> CourseGenerationJob:
        job = await self._locked_job(session, job_id)
        if job.status in FINISHED_JOB:
            raise Conflict(f"The job is already {job.status.value}.")
        now = datetime.now(UTC)
        job.status = JobStatus.CANCELLED
        job.finished_at = now
        # Steps not yet running stop here; a running step keeps its result but starts nothing.
        await session.execute(
            update(GenerationStep)
            .where(
                GenerationStep.job_id == job.id,
                GenerationStep.status.in_((StepStatus.PENDING, StepStatus.QUEUED)),
            )
            .values(status=StepStatus.CANCELLED, finished_at=now)
        )
        job.steps = summarise(await self._states(session, job.id))
        return job

    async def retry(
        self, session: AsyncSession, settings: Settings, job_id: uuid.UUID
    ) -> tuple[CourseGenerationJob, list[uuid.UUID]]:
        """Resume a failed job from where it failed: finished steps are kept."""
        job = await self._locked_job(session, job_id)
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
        return job, await self._dispatch(session, settings, job)

    async def backlog(self, session: AsyncSession) -> int:
        """Steps queued or running, across all jobs: the work the generators have ahead."""
        return int(
            await session.scalar(select(func.count()).where(GenerationStep.status.in_(IN_FLIGHT)))
            or 0
        )

    # ---- the state machine -------------------------------------------------------------

    async def advance(
        self, session: AsyncSession, settings: Settings, job_id: uuid.UUID
    ) -> list[uuid.UUID]:
        job = await self._locked_job(session, job_id)
        return await self._dispatch(session, settings, job)

    async def _dispatch(
        self, session: AsyncSession, settings: Settings, job: CourseGenerationJob
    ) -> list[uuid.UUID]:
        # Runs under the job's row lock on every step completion: it reads only the columns
        # it needs (results can be large) and writes with one UPDATE.
        states = await self._states(session, job.id)
        if job.status in FINISHED_JOB:
            job.steps = summarise(states)
            return []
        now = datetime.now(UTC)
        if job.status is JobStatus.QUEUED:
            job.status = JobStatus.RUNNING
            job.started_at = now
        if all(state.status is StepStatus.SUCCEEDED for state in states):
            job.status = JobStatus.SUCCEEDED
            job.finished_at = now
            add_after_commit(session, _jobs_finished, 1)
            job.steps = summarise(states)
            return []

        status_of = {(state.kind, state.day_number): state.status for state in states}
        duration = int(job.parameters["duration_days"])
        cap = settings.generation_lesson_concurrency_per_job
        days_in_flight = sum(1 for s in states if s.kind in DAY_STEPS and s.status in IN_FLIGHT)
        queued: list[uuid.UUID] = []
        for state in sorted(states, key=lambda s: (DISPATCH_ORDER[s.kind], s.day_number)):
            if state.status is not StepStatus.PENDING:
                continue
            needs = dependencies(state.kind, state.day_number, duration)
            if not all(status_of[need] is StepStatus.SUCCEEDED for need in needs):
                continue
            if state.kind in DAY_STEPS:
                if days_in_flight >= cap:
                    continue
                days_in_flight += 1
            queued.append(state.id)
            status_of[(state.kind, state.day_number)] = StepStatus.QUEUED
        if queued:
            await session.execute(
                update(GenerationStep)
                .where(GenerationStep.id.in_(queued))
                .values(status=StepStatus.QUEUED)
                .execution_options(synchronize_session=False)
            )
        job.steps = summarise(
            [state._replace(status=status_of[(state.kind, state.day_number)]) for state in states]
        )
        return queued

    async def _states(self, session: AsyncSession, job_id: uuid.UUID) -> list[StepState]:
        rows = await session.execute(
            select(
                GenerationStep.id,
                GenerationStep.kind,
                GenerationStep.day_number,
                GenerationStep.status,
            ).where(GenerationStep.job_id == job_id)
        )
        return [StepState(*row) for row in rows.all()]

    async def claim(
        self, session: AsyncSession, step_id: uuid.UUID, *, owner: str, lease: timedelta
    ) -> GenerationStep | None:
        """Take a QUEUED step of a running job for ``owner``, leased for ``lease``: once,
        however many messages name it. None if it is not there to run."""
        job_id = await session.scalar(
            select(GenerationStep.job_id).where(GenerationStep.id == step_id)
        )
        if job_id is None:
            return None
        job = await self._locked_job(session, job_id)
        if job.status is not JobStatus.RUNNING:
            return None
        claimed = await session.scalar(
            update(GenerationStep)
            .where(GenerationStep.id == step_id, GenerationStep.status == StepStatus.QUEUED)
            .values(
                status=StepStatus.RUNNING,
                attempts=GenerationStep.attempts + 1,
                started_at=func.now(),
                lease_owner=owner,
                lease_expires_at=func.now() + lease,
                error=None,
            )
            .returning(GenerationStep)
            .execution_options(populate_existing=True)
        )
        if claimed is not None:
            job.steps = summarise(await self._states(session, job.id))
        return claimed

    async def renew(
        self, session: AsyncSession, step_ids: Sequence[uuid.UUID], *, owner: str, lease: timedelta
    ) -> None:
        """Push back the leases of the steps ``owner`` runs, in one statement."""
        await session.execute(
            update(GenerationStep)
            .where(
                GenerationStep.id.in_(step_ids),
                GenerationStep.lease_owner == owner,
                GenerationStep.status == StepStatus.RUNNING,
            )
            .values(lease_expires_at=func.now() + lease)
            .execution_options(synchronize_session=False)
        )

    async def release(self, session: AsyncSession, *, owner: str) -> list[uuid.UUID]:
        """Hand back every step ``owner`` runs (it is stopping): QUEUED again, for another
        worker to take at once. Returns the ids to enqueue."""
        jobs = await session.scalars(
            select(GenerationStep.job_id)
            .where(GenerationStep.lease_owner == owner, GenerationStep.status == StepStatus.RUNNING)
            .distinct()
        )
        released: list[uuid.UUID] = []
        for job_id in list(jobs):
            released += await self._take_back(
                session, job_id, GenerationStep.lease_owner == owner, error="handed back"
            )
        return released

    async def _held(self, session: AsyncSession, step: GenerationStep) -> GenerationStep | None:
        """The step's row, locked, if the worker that claimed ``step`` still holds it; None once
        its lease was taken over (the fence on every write of a step's outcome)."""
        return await session.scalar(
            select(GenerationStep)
            .where(
                GenerationStep.id == step.id,
                GenerationStep.status == StepStatus.RUNNING,
                GenerationStep.lease_owner == step.lease_owner,
                GenerationStep.attempts == step.attempts,
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    async def complete(
        self,
        session: AsyncSession,
        settings: Settings,
        step: GenerationStep,
        *,
        result: dict[str, Any],
        calls: Sequence[CallRecord],
    ) -> list[uuid.UUID] | None:
        """Persist a step's result and advance the job. None when another worker took the
        step over meanwhile (its result wins). A result that arrives after its job failed or
        was cancelled is still kept: it was paid for, and a retry will not redo it."""
        # The step's own writes happen before the job lock is taken, so completions of sibling
        # steps queue on it only briefly.
        current = await self._held(session, step)
        if current is None:
            return None
        self._record_calls(session, current, calls)
        current.status = StepStatus.SUCCEEDED
        current.result = result
        current.finished_at = datetime.now(UTC)
        current.lease_expires_at = None
        await session.flush()
        job = await self._locked_job(session, step.job_id)
        self._add_to_job(job, calls)
        return await self._dispatch(session, settings, job)

    async def fail(
        self,
        session: AsyncSession,
        step: GenerationStep,
        *,
        error: str,
        calls: Sequence[CallRecord],
    ) -> None:
        """A step failed for good: the job fails with its reason and stops dispatching."""
        current = await self._held(session, step)
        if current is None:
            return
        self._record_calls(session, current, calls)
        job = await self._locked_job(session, step.job_id)
        self._add_to_job(job, calls)
        now = datetime.now(UTC)
        current.status = StepStatus.FAILED
        current.error = error
        current.finished_at = now
        current.lease_expires_at = None
        if job.status is JobStatus.RUNNING:
            job.status = JobStatus.FAILED
            day = f" (day {current.day_number})" if current.day_number else ""
            job.error = f"{current.kind.value.lower()} step{day} failed: {error}"
            job.finished_at = now
            add_after_commit(session, _jobs_finished, 1)
            add_after_commit(session, _jobs_failed, 1)
        job.steps = summarise(await self._states(session, job.id))

    async def requeue(
        self,
        session: AsyncSession,
        step: GenerationStep,
        *,
        error: str,
        calls: Sequence[CallRecord],
    ) -> None:
        """A step cut short by a passing fault (Redis unreachable): QUEUED again, its calls
        recorded, for the sweeper to send once the queued timeout has passed."""
        current = await self._held(session, step)
        if current is None:
            return
        self._record_calls(session, current, calls)
        job = await self._locked_job(session, step.job_id)
        self._add_to_job(job, calls)
        current.status = StepStatus.QUEUED
        current.error = error
        current.attempts -= 1  # a passing fault is not the step's: the attempt is given back
        current.lease_owner = None
        current.lease_expires_at = None
        current.updated_at = datetime.now(UTC)
        job.steps = summarise(await self._states(session, job.id))

    async def sweep(
        self,
        session: AsyncSession,
        settings: Settings,
        *,
        queue_idle: bool = False,
        max_attempts: int = 3,
    ) -> list[uuid.UUID]:
        """Re-enqueue what a lost message or a dead worker left behind. Safe to run at any
        moment, as often as wanted: it only re-sends steps that are provably stuck, and a step
        is claimed once however many messages name it. ``queue_idle``: no message waits on the
        queue, so a step QUEUED for a lease's time has lost its message."""
        # RUNNING with its lease run out: its worker stopped renewing it (it died). A step with
        # no lease was claimed by a release before leases (a rolling deploy): its timeout says.
        lease_ended = or_(
            GenerationStep.lease_expires_at < func.now(),
            and_(
                GenerationStep.lease_expires_at.is_(None),
                GenerationStep.started_at
                < func.now() - timedelta(seconds=settings.generation_step_timeout_seconds),
            ),
        )
        expired = await session.scalars(
            select(GenerationStep.job_id)
            .where(GenerationStep.status == StepStatus.RUNNING, lease_ended)
            .distinct()
        )
        resend: list[uuid.UUID] = []
        for job_id in list(expired):
            resend += await self._take_back(
                session, job_id, lease_ended, error="lease expired", max_attempts=max_attempts
            )
        # QUEUED for long: its message was lost, or never sent (its worker died between the
        # commit and the send). Behind a backlog only the long queued timeout tells.
        now = datetime.now(UTC)
        lost_after = (
            settings.generation_step_lease_seconds
            if queue_idle
            else settings.generation_queued_timeout_seconds
        )
        stale_queued = now - timedelta(seconds=lost_after)
        lost = await session.scalars(
            select(GenerationStep)
            .join(CourseGenerationJob, CourseGenerationJob.id == GenerationStep.job_id)
            .where(
                CourseGenerationJob.status == JobStatus.RUNNING,
                GenerationStep.status == StepStatus.QUEUED,
                GenerationStep.updated_at < stale_queued,
            )
            .with_for_update(skip_locked=True, of=GenerationStep)
        )
        for step in lost:
            step.updated_at = now  # restart the clock for lost-message detection
            resend.append(step.id)
        # Jobs whose next steps were never dispatched (a crash between commit and advance).
        idle_jobs = await session.scalars(
            select(CourseGenerationJob.id).where(
                CourseGenerationJob.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)),
                CourseGenerationJob.updated_at < stale_queued,
                ~select(GenerationStep.id)
                .where(
                    GenerationStep.job_id == CourseGenerationJob.id,
                    GenerationStep.status.in_(IN_FLIGHT),
                )
                .exists(),
            )
        )
        for job_id in list(idle_jobs):
            resend += await self.advance(session, settings, job_id)
        await session.flush()
        return resend

    # ---- helpers -----------------------------------------------------------------------

    async def _take_back(
        self,
        session: AsyncSession,
        job_id: uuid.UUID,
        which: ColumnElement[bool],
        *,
        error: str,
        max_attempts: int | None = None,
    ) -> list[uuid.UUID]:
        """Take ``which`` of the job's RUNNING steps from their holder: QUEUED again (to send)
        while the job runs, failed at ``max_attempts`` (a step that keeps killing its worker),
        CANCELLED if the job ended meanwhile. Returns the ids to send."""
        job = await self._locked_job(session, job_id)
        steps = await session.scalars(
            select(GenerationStep)
            .where(
                GenerationStep.job_id == job_id, GenerationStep.status == StepStatus.RUNNING, which
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        now = datetime.now(UTC)
        queued: list[uuid.UUID] = []
        for step in list(steps):
            if job.status is JobStatus.RUNNING and max_attempts and step.attempts >= max_attempts:
                await self.fail(
                    session, step, error=f"no result after {step.attempts} attempts", calls=()
                )
                continue
            if job.status is JobStatus.RUNNING:
                step.status = StepStatus.QUEUED
                step.error = f"requeued: {error}"
                if max_attempts is None:  # handed back by a stopping worker, not a failure
                    step.attempts -= 1
                queued.append(step.id)
            else:
                step.status = StepStatus.CANCELLED
                step.finished_at = now
            step.lease_owner = None
            step.lease_expires_at = None
            step.updated_at = now
        await session.flush()
        job.steps = summarise(await self._states(session, job.id))
        return queued

    async def _locked_job(self, session: AsyncSession, job_id: uuid.UUID) -> CourseGenerationJob:
        # NO KEY UPDATE: rows that merely reference the job (llm_calls, inserted before this
        # lock is taken) hold KEY SHARE locks on it, which FOR UPDATE would deadlock against.
        job = await session.scalar(
            select(CourseGenerationJob)
            .where(CourseGenerationJob.id == job_id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
        if job is None:
            raise NotFound("No such generation job.")
        return job

    def _record_calls(
        self, session: AsyncSession, step: GenerationStep, calls: Sequence[CallRecord]
    ) -> None:
        session.add_all(
            LlmCall(
                job_id=step.job_id,
                step_id=step.id,
                provider=call.provider,
                model=call.model,
                purpose=call.purpose,
                input_tokens=call.input_tokens,
                output_tokens=call.output_tokens,
                cost_usd=call.cost_usd,
                latency_ms=call.latency_ms,
                succeeded=call.succeeded,
            )
            for call in calls
        )
        step.input_tokens += sum(c.input_tokens for c in calls)
        step.output_tokens += sum(c.output_tokens for c in calls)
        cost = sum((c.cost_usd for c in calls), Decimal("0"))
        step.cost_usd += cost
        if calls:
            add_after_commit(session, _cost, float(cost))
            for direction, tokens in (
                ("input", sum(c.input_tokens for c in calls)),
                ("output", sum(c.output_tokens for c in calls)),
            ):
                add_after_commit(session, _tokens, tokens, {"direction": direction})

    def _add_to_job(self, job: CourseGenerationJob, calls: Sequence[CallRecord]) -> None:
        job.input_tokens += sum(c.input_tokens for c in calls)
        job.output_tokens += sum(c.output_tokens for c in calls)
        job.cost_usd += sum((c.cost_usd for c in calls), Decimal("0"))


def summarise(states: Sequence[StepState]) -> dict[str, Any]:
    """Per-kind step counts for the job row, so listings need not read every step."""
    summary: dict[str, dict[str, int]] = {}
    for state in states:
        counts = summary.setdefault(state.kind.value.lower(), {})
        counts[state.status.value] = counts.get(state.status.value, 0) + 1
    return summary


generation = GenerationService()
