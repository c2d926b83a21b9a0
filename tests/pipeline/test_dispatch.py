"""The dispatch order of a job's steps, driven directly through the state machine (no worker):
lessons start before scripts, and the per-job cap holds lessons and scripts together."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.config import Settings
from momentum_domain.generation.jobs import generation_jobs
from momentum_domain.generation.models import GenerationStep, StepKind, StepStatus
from momentum_domain.generation.schemas import JobParameters
from momentum_domain.generation.service import generation
from tests.fixtures.app import Account


async def _finish(db: AsyncSession, job_id: object, kind: StepKind, days: range) -> None:
    await db.execute(
        update(GenerationStep)
        .where(
            GenerationStep.job_id == job_id,
            GenerationStep.kind == kind,
            GenerationStep.day_number.in_(list(days)),
        )
        .values(status=StepStatus.SUCCEEDED)
    )


async def _queued(db: AsyncSession, job_id: object) -> set[tuple[StepKind, int]]:
    rows = await db.execute(
        select(GenerationStep.kind, GenerationStep.day_number).where(
            GenerationStep.job_id == job_id, GenerationStep.status == StepStatus.QUEUED
        )
    )
    return {(kind, day) for kind, day in rows.all()}


async def test_lessons_start_before_scripts_within_the_cap(
    db: AsyncSession, settings: Settings, admin_account: Account
) -> None:
    capped = settings.model_copy(update={"generation_lesson_concurrency_per_job": 4})
    job = await generation_jobs.request_job(
        db,
        capped,
        JobParameters(topic="Dispatch order", duration_days=7),
        actor_id=admin_account.user.id,
        origin=None,
        idempotency_key=None,
        trace_context={},
    )
    assert await _queued(db, job.id) == {(StepKind.OUTLINE, 0)}

    await _finish(db, job.id, StepKind.OUTLINE, range(1))
    await generation.advance(db, capped, job.id)
    lessons = {(StepKind.LESSON, day) for day in range(1, 5)}
    assert await _queued(db, job.id) == {(StepKind.THUMBNAIL, 0), *lessons}

    # Day 1 is written: its script waits while a lesson is still to start.
    await _finish(db, job.id, StepKind.LESSON, range(1, 2))
    await generation.advance(db, capped, job.id)
    queued = await _queued(db, job.id)
    assert (StepKind.LESSON, 5) in queued
    assert (StepKind.SCRIPT, 1) not in queued

    # Every lesson has started: the scripts of written days take the free slots.
    await _finish(db, job.id, StepKind.LESSON, range(2, 6))
    await generation.advance(db, capped, job.id)
    in_flight = {step for step in await _queued(db, job.id) if step[0] is not StepKind.THUMBNAIL}
    assert in_flight == {
        (StepKind.LESSON, 6),
        (StepKind.LESSON, 7),
        (StepKind.SCRIPT, 1),
        (StepKind.SCRIPT, 2),
    }
