"""Kill the generation worker mid-job (SIGKILL: no clean-up) and start another: the job
completes, nothing finished is generated or paid for twice, and no lesson is duplicated."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.catalog.models import Lesson
from momentum_domain.generation.models import GenerationStep, LlmCall, StepKind, StepStatus
from tests.api.conftest import Account
from tests.pipeline.conftest import queue, wait_for_job

Client = httpx.AsyncClient


def _spawn_worker(database_url: str, redis_url: str, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MOMENTUM_DATABASE_URL": database_url,
        "MOMENTUM_REDIS_URL": redis_url,
        "MOMENTUM_DATA_DIR": str(data_dir),
        "MOMENTUM_LLM_OFFLINE_LATENCY": json.dumps({"lesson": 0.4, "script": 0.1}),
        "MOMENTUM_GENERATION_STEP_TIMEOUT_SECONDS": "3",
        "MOMENTUM_GENERATION_QUEUED_TIMEOUT_SECONDS": "2",
        "MOMENTUM_GENERATION_SWEEP_INTERVAL_SECONDS": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "momentum_generator", "--threads", "8"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _succeeded_lessons(db: AsyncSession, job_id: str) -> int:
    db.expire_all()
    return int(
        await db.scalar(
            select(func.count()).where(
                GenerationStep.job_id == uuid.UUID(job_id),
                GenerationStep.kind == StepKind.LESSON,
                GenerationStep.status == StepStatus.SUCCEEDED,
            )
        )
        or 0
    )


async def test_a_killed_worker_is_replaced_without_repeating_work(
    api: Client,
    admin_account: Account,
    db: AsyncSession,
    database_url: str,
    redis_url: str,
    tmp_path: Path,
) -> None:
    first = _spawn_worker(database_url, redis_url, tmp_path)
    try:
        queued = await queue(api, admin_account, "Kill me softly", 14)
        deadline = time.monotonic() + 60
        while await _succeeded_lessons(db, queued["id"]) < 4:
            assert time.monotonic() < deadline, "the first worker made no progress"
            await asyncio.sleep(0.1)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    killed_at = await _succeeded_lessons(db, queued["id"])
    assert killed_at < 14  # really mid-job

    second = _spawn_worker(database_url, redis_url, tmp_path)
    try:
        job = await wait_for_job(api, admin_account, queued["id"], within=90)
    finally:
        second.terminate()
        second.wait(timeout=30)
    assert job["status"] == "SUCCEEDED", job["error"]

    per_step = (
        await db.execute(
            select(LlmCall.step_id, func.count())
            .where(LlmCall.job_id == uuid.UUID(queued["id"]))
            .group_by(LlmCall.step_id)
        )
    ).all()
    assert len(per_step) == 1 + 14 + 14  # outline, lessons, scripts: each recorded...
    assert {count for _, count in per_step} == {1}  # ...exactly once
    days = list(
        await db.scalars(
            select(Lesson.day_number).where(Lesson.course_id == uuid.UUID(job["course_id"]))
        )
    )
    assert sorted(days) == list(range(1, 15))
