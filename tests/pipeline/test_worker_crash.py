"""Take a generation worker away mid-job and start another, with the production lease and
timeout settings: killed (SIGKILL, no clean-up), its steps are re-run once their leases end;
stopped (SIGTERM, as ECS and Spot do), it hands its steps back at once. Either way the job
completes, each model call is recorded once, and no lesson is duplicated."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.catalog.models import Lesson
from momentum_domain.generation.models import (
    CourseGenerationJob,
    GenerationStep,
    LlmCall,
    StepKind,
    StepStatus,
)
from tests.fixtures.app import Account
from tests.fixtures.generation import queue, wait_for_job
from tests.fixtures.workers import SpawnService, service_env, stop_service

Client = httpx.AsyncClient
DAYS = 14


def _worker(
    spawn_service: SpawnService,
    database_url: str,
    redis_url: str,
    data_dir: Path,
    *,
    lesson_latency: float,
) -> subprocess.Popen[bytes]:
    """A generator process, its log named after its data folder."""
    # Only the model's latency is set: leases, sweeps and timeouts are the production defaults.
    latency = json.dumps({"lesson": lesson_latency, "script": 0.1})
    env = service_env(database_url, redis_url, data_dir, MOMENTUM_LLM_OFFLINE_LATENCY=latency)
    return spawn_service(data_dir.name, "momentum_generator", env, "--threads", "8")


async def _lessons(db: AsyncSession, job_id: str, status: StepStatus) -> int:
    db.expire_all()
    return int(
        await db.scalar(
            select(func.count()).where(
                GenerationStep.job_id == uuid.UUID(job_id),
                GenerationStep.kind == StepKind.LESSON,
                GenerationStep.status == status,
            )
        )
        or 0
    )


async def _wait_until(check: Callable[[], Any], what: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def _step_counts_agree(db: AsyncSession, job_id: str) -> None:
    """The job's summary says what its steps say."""
    db.expire_all()
    job = await db.get(CourseGenerationJob, uuid.UUID(job_id), populate_existing=True)
    assert job is not None
    rows = await db.execute(
        select(GenerationStep.kind, GenerationStep.status, func.count())
        .where(GenerationStep.job_id == job.id)
        .group_by(GenerationStep.kind, GenerationStep.status)
    )
    actual: dict[str, dict[str, int]] = {}
    for kind, status, count in rows.all():
        actual.setdefault(kind.value.lower(), {})[status.value] = count
    assert job.steps == actual


async def _assert_done_once(db: AsyncSession, job: dict[str, Any]) -> None:
    assert job["status"] == "SUCCEEDED", job["error"]
    per_step = (
        await db.execute(
            select(LlmCall.step_id, func.count())
            .where(LlmCall.job_id == uuid.UUID(job["id"]))
            .group_by(LlmCall.step_id)
        )
    ).all()
    assert len(per_step) == 1 + DAYS + DAYS  # outline, lessons, scripts: each recorded...
    assert {count for _, count in per_step} == {1}  # ...exactly once
    days = list(
        await db.scalars(
            select(Lesson.day_number).where(Lesson.course_id == uuid.UUID(job["course_id"]))
        )
    )
    assert sorted(days) == list(range(1, DAYS + 1))


async def test_a_killed_worker_is_replaced_within_a_minute_without_repeating_work(
    api: Client,
    admin_account: Account,
    db: AsyncSession,
    database_url: str,
    redis_url: str,
    tmp_path: Path,
    spawn_service: SpawnService,
    record_property: Callable[[str, object], None],
) -> None:
    first = _worker(spawn_service, database_url, redis_url, tmp_path / "first", lesson_latency=0.4)
    try:
        queued = await queue(api, admin_account, "Kill me softly", DAYS)
        job_id = queued["id"]

        async def some_lessons_written() -> bool:
            return await _lessons(db, job_id, StepStatus.SUCCEEDED) >= 4

        await _wait_until(some_lessons_written, "the first worker made no progress")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert await _lessons(db, job_id, StepStatus.SUCCEEDED) < DAYS  # really mid-job
    assert await _lessons(db, job_id, StepStatus.RUNNING) > 0  # left held by the dead worker

    started = time.monotonic()
    second = _worker(
        spawn_service, database_url, redis_url, tmp_path / "second", lesson_latency=0.2
    )
    try:

        async def second_ready() -> bool:
            return (tmp_path / "second" / "generator.health").exists()

        await _wait_until(second_ready, "the second worker did not start")
        ready = time.monotonic()
        job = await wait_for_job(api, admin_account, job_id, within=60 - (ready - started))
    finally:
        stop_service(second)
    done = time.monotonic()
    print(
        f"kill -9 drill: the job finished {done - started:.1f}s after the new worker was started"
        f" ({done - ready:.1f}s after it was ready)"
    )
    record_property("recovery_seconds", round(done - started, 1))
    await _assert_done_once(db, job)
    await _step_counts_agree(db, job_id)


async def _steps_of(db: AsyncSession, worker: subprocess.Popen[bytes]) -> dict[uuid.UUID, Any]:
    """The steps ``worker`` holds, with their lease ends (the owner is host:pid:nonce)."""
    db.expire_all()
    rows = await db.execute(
        select(GenerationStep.id, GenerationStep.lease_expires_at).where(
            GenerationStep.status == StepStatus.RUNNING,
            GenerationStep.lease_owner.like(f"%:{worker.pid}:%"),
        )
    )
    return dict(rows.all())


async def test_a_stopped_worker_hands_its_steps_back_at_once(
    api: Client,
    admin_account: Account,
    db: AsyncSession,
    database_url: str,
    redis_url: str,
    tmp_path: Path,
    spawn_service: SpawnService,
    record_property: Callable[[str, object], None],
) -> None:
    # Lessons take the first worker far longer than a stop may: they are mid-call when it goes.
    first = _worker(spawn_service, database_url, redis_url, tmp_path / "first", lesson_latency=120)
    second: subprocess.Popen[bytes] | None = None
    try:
        queued = await queue(api, admin_account, "Stop me gently", DAYS)
        job_id = queued["id"]

        async def lessons_held() -> bool:
            return len(await _steps_of(db, first)) >= 8

        await _wait_until(lessons_held, "the first worker started no lessons")
        # A second worker, ready to take over, as in a rolling deployment.
        second = _worker(
            spawn_service, database_url, redis_url, tmp_path / "second", lesson_latency=0.2
        )

        async def second_ready() -> bool:
            return (tmp_path / "second" / "generator.health").exists()

        await _wait_until(second_ready, "the second worker did not start")

        # A live worker keeps its steps past their first lease: it renews them, and the
        # other worker's sweeps leave them alone.
        held = await _steps_of(db, first)
        first_leases_end = max(held.values())

        await asyncio.sleep((first_leases_end - datetime.now(UTC)).total_seconds() + 1)
        still_held = await _steps_of(db, first)
        assert set(still_held) == set(held)
        await _step_counts_agree(db, job_id)

        # Renewal only pushes leases back: none of these ends before this.
        leases_end = min(still_held.values())
        stopped_at = datetime.now(UTC)
        first.send_signal(signal.SIGTERM)
        # Well inside ECS's stop timeout, without waiting for the model calls to end.
        assert first.wait(timeout=20) == 0
        assert await _steps_of(db, first) == {}

        job = await wait_for_job(api, admin_account, job_id, within=60)
    finally:
        for worker in (first, second):
            if worker is not None and worker.poll() is None:
                stop_service(worker)
    await _assert_done_once(db, job)
    await _step_counts_agree(db, job_id)
    # Handed back, not left to expire: done by the other worker before their leases would
    # have ended (a lease taken over after expiry could not even have started by then).
    last_done = await db.scalar(
        select(func.max(GenerationStep.finished_at)).where(GenerationStep.id.in_(list(held)))
    )
    assert last_done is not None
    assert last_done < leases_end
    handoff = (last_done - stopped_at).total_seconds()
    print(f"SIGTERM drill: the handed-back steps were done {handoff:.1f}s after SIGTERM")
    record_property("handoff_seconds", round(handoff, 1))
