"""What runs next in a job: the steps' dependencies, and the dispatch that marks QUEUED the
pending steps whose inputs exist, under the job's row lock so concurrent completions never
dispatch a step twice. Callers send the returned step ids once their transaction commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from opentelemetry import metrics
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain import metric_names
from momentum_domain.config import Settings
from momentum_domain.errors import NotFound
from momentum_domain.generation.models import (
    CourseGenerationJob,
    GenerationStep,
    JobStatus,
    StepKind,
    StepStatus,
)
from momentum_domain.kit.telemetry import add_after_commit, create_counter

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

# Counted when the transaction that moves a job to its outcome commits.
_meter = metrics.get_meter("momentum.generation")
_jobs_finished = create_counter(_meter, metric_names.GENERATION_JOBS_FINISHED)
_jobs_failed = create_counter(_meter, metric_names.GENERATION_JOBS_FAILED)


class StepState(NamedTuple):
    id: uuid.UUID
    kind: StepKind
    day_number: int
    status: StepStatus


def job_steps(duration_days: int) -> list[tuple[StepKind, int]]:
    """Every step of a job of ``duration_days``, as (kind, day); day 0 for course-level steps."""
    kinds = [(StepKind.OUTLINE, 0), (StepKind.THUMBNAIL, 0)]
    kinds += [(kind, d) for d in range(1, duration_days + 1) for kind in DAY_STEPS]
    return [*kinds, (StepKind.SAVE, 0), (StepKind.NOTIFY, 0)]


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


def summarise(states: Sequence[StepState]) -> dict[str, Any]:
    """Per-kind step counts for the job row, so listings need not read every step."""
    summary: dict[str, dict[str, int]] = {}
    for state in states:
        counts = summary.setdefault(state.kind.value.lower(), {})
        counts[state.status.value] = counts.get(state.status.value, 0) + 1
    return summary


def end_job(
    session: AsyncSession, job: CourseGenerationJob, status: JobStatus, error: str | None = None
) -> None:
    """The job succeeded or failed: its outcome, counted once the transaction commits."""
    job.status = status
    if error is not None:
        job.error = error
    job.finished_at = datetime.now(UTC)
    add_after_commit(session, _jobs_finished, 1)
    if status is JobStatus.FAILED:
        add_after_commit(session, _jobs_failed, 1)


async def locked_job(session: AsyncSession, job_id: uuid.UUID) -> CourseGenerationJob:
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


async def step_states(session: AsyncSession, job_id: uuid.UUID) -> list[StepState]:
    rows = await session.execute(
        select(
            GenerationStep.id,
            GenerationStep.kind,
            GenerationStep.day_number,
            GenerationStep.status,
        ).where(GenerationStep.job_id == job_id)
    )
    return [StepState(*row) for row in rows.all()]


async def refresh_summary(session: AsyncSession, job: CourseGenerationJob) -> None:
    job.steps = summarise(await step_states(session, job.id))


async def dispatch(
    session: AsyncSession, settings: Settings, job: CourseGenerationJob
) -> list[uuid.UUID]:
    """Queue the job's steps that can run now (the job locked by ``locked_job``); returns
    their ids. Ends the job once every step succeeded."""
    # Runs under the job's row lock on every step completion: it reads only the columns
    # it needs (results can be large) and writes with one UPDATE.
    states = await step_states(session, job.id)
    if job.status in FINISHED_JOB:
        job.steps = summarise(states)
        return []
    if job.status is JobStatus.QUEUED:
        job.status = JobStatus.RUNNING
        job.started_at = datetime.now(UTC)
    if all(state.status is StepStatus.SUCCEEDED for state in states):
        end_job(session, job, JobStatus.SUCCEEDED)
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
