"""The life of a generation job's steps, as the generator's workers drive it: PostgreSQL holds
every job and step. A step is PENDING until its inputs exist, QUEUED once a message for it is
(about to be) on the queue, RUNNING while a worker holds its lease, and SUCCEEDED with its
result persisted, or FAILED. What runs next is decided under the job's row lock
(generation.dispatch); callers enqueue the returned step ids after committing.

A worker renews the leases of the steps it runs every few seconds; the sweeper queues again a
step whose lease ran out (its worker died), and a stopping worker hands its steps back at once.
Every write of a step's outcome is fenced on the lease it was claimed under, so a worker whose
step was taken over writes nothing. Lease times come from the database's clock.

Lock order: a job's row, then its steps' rows, except where a worker records the outcome of a
step it holds (that step, then its job): a step is never claimed while its holder records it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.config import Settings
from momentum_domain.generation.costs import CallRecord, add_to_job, record_calls
from momentum_domain.generation.dispatch import (
    IN_FLIGHT,
    dispatch,
    end_job,
    locked_job,
    refresh_summary,
)
from momentum_domain.generation.models import (
    CourseGenerationJob,
    GenerationStep,
    JobStatus,
    StepStatus,
)


class GenerationService:
    async def backlog(self, session: AsyncSession) -> int:
        """Steps queued or running, across all jobs: the work the generators have ahead."""
        return int(
            await session.scalar(select(func.count()).where(GenerationStep.status.in_(IN_FLIGHT)))
            or 0
        )

    async def advance(
        self, session: AsyncSession, settings: Settings, job_id: uuid.UUID
    ) -> list[uuid.UUID]:
        job = await locked_job(session, job_id)
        return await dispatch(session, settings, job)

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
        job = await locked_job(session, job_id)
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
            await refresh_summary(session, job)
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
        record_calls(session, current, calls)
        current.status = StepStatus.SUCCEEDED
        current.result = result
        current.finished_at = datetime.now(UTC)
        current.lease_expires_at = None
        await session.flush()
        job = await locked_job(session, step.job_id)
        add_to_job(job, calls)
        return await dispatch(session, settings, job)

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
        record_calls(session, current, calls)
        job = await locked_job(session, step.job_id)
        add_to_job(job, calls)
        current.status = StepStatus.FAILED
        current.error = error
        current.finished_at = datetime.now(UTC)
        current.lease_expires_at = None
        if job.status is JobStatus.RUNNING:
            day = f" (day {current.day_number})" if current.day_number else ""
            end_job(
                session,
                job,
                JobStatus.FAILED,
                f"{current.kind.value.lower()} step{day} failed: {error}",
            )
        await refresh_summary(session, job)

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
        record_calls(session, current, calls)
        job = await locked_job(session, step.job_id)
        add_to_job(job, calls)
        current.status = StepStatus.QUEUED
        current.error = error
        current.attempts -= 1  # a passing fault is not the step's: the attempt is given back
        current.lease_owner = None
        current.lease_expires_at = None
        current.updated_at = datetime.now(UTC)
        await refresh_summary(session, job)

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
        job = await locked_job(session, job_id)
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
        await refresh_summary(session, job)
        return queued


generation = GenerationService()
