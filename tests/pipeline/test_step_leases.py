"""Step leases, driven directly through the state machine (no worker): a live lease is left
alone, an ended one is taken over, the worker it was taken from writes nothing, and a stopping
worker's steps are queued again at once."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.config import Settings
from momentum_domain.generation.costs import CallRecord
from momentum_domain.generation.jobs import generation_jobs
from momentum_domain.generation.models import (
    CourseGenerationJob,
    GenerationStep,
    LlmCall,
    StepStatus,
)
from momentum_domain.generation.schemas import JobParameters
from momentum_domain.generation.service import generation
from tests.fixtures.app import Account

LEASE = timedelta(seconds=15)
CALL = CallRecord(
    provider="offline",
    model="offline",
    purpose="outline",
    input_tokens=10,
    output_tokens=20,
    cost_usd=Decimal("0.01"),
    latency_ms=5,
)


async def _outline_queued(db: AsyncSession, settings: Settings, admin: Account) -> uuid.UUID:
    job = await generation_jobs.request_job(
        db,
        settings,
        JobParameters(topic="Leases", duration_days=7),
        actor_id=admin.user.id,
        origin=None,
        idempotency_key=None,
        trace_context={},
    )
    outline = await db.scalar(
        select(GenerationStep.id).where(
            GenerationStep.job_id == job.id, GenerationStep.status == StepStatus.QUEUED
        )
    )
    assert outline is not None
    return outline


async def _row(db: AsyncSession, step_id: uuid.UUID) -> GenerationStep:
    step = await db.get(GenerationStep, step_id, populate_existing=True)
    assert step is not None
    return step


async def test_a_worker_whose_step_was_taken_over_cannot_write_its_result(
    db: AsyncSession, settings: Settings, admin_account: Account
) -> None:
    step_id = await _outline_queued(db, settings, admin_account)
    mine = await generation.claim(db, step_id, owner="worker-a", lease=LEASE)
    assert mine is not None
    assert mine.lease_owner == "worker-a"
    db.expunge(mine)  # worker A's copy, as it holds it while the model answers

    # Held and renewed: the sweeper leaves it alone.
    await generation.renew(db, [step_id], owner="worker-a", lease=LEASE)
    assert await generation.sweep(db, settings) == []

    # Worker A stops renewing; once its lease ends the step is queued again and B takes it.
    await db.execute(
        update(GenerationStep)
        .where(GenerationStep.id == step_id)
        .values(lease_expires_at=func.now() - timedelta(seconds=1))
    )
    assert await generation.sweep(db, settings) == [step_id]
    theirs = await generation.claim(db, step_id, owner="worker-b", lease=LEASE)
    assert theirs is not None
    assert theirs.attempts == 2

    # A's answer arrives late: fenced out, whatever it tries.
    assert await generation.complete(db, settings, mine, result={"by": "a"}, calls=[CALL]) is None
    await generation.fail(db, mine, error="a failed", calls=[CALL])
    await generation.requeue(db, mine, error="a requeued", calls=[CALL])
    row = await _row(db, step_id)
    assert (row.status, row.lease_owner, row.result, row.error) == (
        StepStatus.RUNNING,
        "worker-b",
        None,
        None,
    )
    calls = select(func.count()).where(LlmCall.step_id == step_id)
    assert await db.scalar(calls) == 0

    # B's answer is the one kept, its call recorded once.
    assert await generation.complete(db, settings, theirs, result={"by": "b"}, calls=[CALL])
    row = await _row(db, step_id)
    assert (row.status, row.result) == (StepStatus.SUCCEEDED, {"by": "b"})
    assert await db.scalar(calls) == 1


async def test_a_stopping_worker_hands_its_steps_back_at_once(
    db: AsyncSession, settings: Settings, admin_account: Account
) -> None:
    step_id = await _outline_queued(db, settings, admin_account)
    claimed = await generation.claim(db, step_id, owner="worker-a", lease=LEASE)
    assert claimed is not None
    job = await db.get(CourseGenerationJob, claimed.job_id, populate_existing=True)
    assert job is not None
    assert job.steps["outline"] == {"RUNNING": 1}  # the summary follows the claim

    assert await generation.release(db, owner="worker-b") == []
    assert await generation.release(db, owner="worker-a") == [step_id]
    row = await _row(db, step_id)
    assert (row.status, row.lease_owner, row.lease_expires_at) == (StepStatus.QUEUED, None, None)
    assert job.steps["outline"] == {"QUEUED": 1}
    # Another worker takes it straight away, without waiting for the old lease to end.
    assert await generation.claim(db, step_id, owner="worker-b", lease=LEASE) is not None
    # A hand-back is not the step's failure: it does not use up an attempt.
    assert (await _row(db, step_id)).attempts == 1


async def test_steps_handed_back_again_and_again_never_run_out_of_attempts(
    db: AsyncSession, settings: Settings, admin_account: Account
) -> None:
    step_id = await _outline_queued(db, settings, admin_account)
    for stop in range(5):  # deploys, Spot interruptions, Redis blips
        claimed = await generation.claim(db, step_id, owner=f"worker-{stop}", lease=LEASE)
        assert claimed is not None
        if stop % 2:
            await generation.release(db, owner=f"worker-{stop}")
        else:
            await generation.requeue(db, claimed, error="redis blip", calls=[])
    claimed = await generation.claim(db, step_id, owner="worker-last", lease=LEASE)
    assert claimed is not None
    assert claimed.attempts == 1
    await db.execute(
        update(GenerationStep)
        .where(GenerationStep.id == step_id)
        .values(lease_expires_at=func.now() - timedelta(seconds=1))
    )
    assert await generation.sweep(db, settings) == [step_id]  # queued again, not failed


async def test_a_step_claimed_before_leases_existed_is_swept_after_its_timeout(
    db: AsyncSession, settings: Settings, admin_account: Account
) -> None:
    """A generator of the previous release (a rolling deploy) claims without a lease; if it
    dies, the step must not stay RUNNING for ever."""
    step_id = await _outline_queued(db, settings, admin_account)
    assert await generation.claim(db, step_id, owner="old-release", lease=LEASE) is not None
    timeout = timedelta(seconds=settings.generation_step_timeout_seconds)
    await db.execute(
        update(GenerationStep)
        .where(GenerationStep.id == step_id)
        .values(lease_owner=None, lease_expires_at=None, started_at=func.now() - timeout / 2)
    )
    assert await generation.sweep(db, settings) == []  # within its timeout: left alone
    await db.execute(
        update(GenerationStep)
        .where(GenerationStep.id == step_id)
        .values(started_at=func.now() - timeout - timedelta(seconds=1))
    )
    assert await generation.sweep(db, settings) == [step_id]
