"""Stop Redis for 10 s under a running generator and the API while requests arrive, then start
it again on the same port (empty: nothing was saved). No request answers 500. A job queued
during the outage is accepted once and waits in PostgreSQL; the job that was running when Redis
went away and the one queued during it both finish with no manual retry: the sweeper sends what
the outage lost, and every client reconnects on its own."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_api.app import create_app
from momentum_domain.config import Settings
from momentum_domain.generation.models import (
    CourseGenerationJob,
    GenerationStep,
    LlmCall,
    StepKind,
    StepStatus,
)
from tests.fixtures.app import Account, serve
from tests.fixtures.generation import queue, wait_for_job
from tests.fixtures.redis_servers import free_port, redis_server_binary, wait_until_ready
from tests.fixtures.workers import SpawnService, service_env, stop_service

OUTAGE_SECONDS = 10


class RestartableRedis:
    """A redis-server that can be stopped and started again on the same port."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._directory = directory
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._directory.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self._directory),
                "--save", "",
                "--appendonly", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until_ready(Redis.from_url(self.url), self._process)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None


@contextmanager
def generator(
    spawn_service: SpawnService, settings: Settings, data_dir: Path
) -> Iterator[subprocess.Popen[bytes]]:
    env = service_env(
        settings.database_url,
        settings.redis_url,
        data_dir,
        MOMENTUM_LLM_OFFLINE_LATENCY=json.dumps({"lesson": 0.3, "script": 0.1}),
        MOMENTUM_GENERATION_STEP_TIMEOUT_SECONDS="10",
        MOMENTUM_GENERATION_QUEUED_TIMEOUT_SECONDS="2",
        MOMENTUM_GENERATION_SWEEP_INTERVAL_SECONDS="1",
    )
    process = spawn_service("generator", "momentum_generator", env, "--threads", "4")
    try:
        yield process
    finally:
        stop_service(process)


async def _succeeded_lessons(db: AsyncSession, job_id: str) -> int:
    db.expire_all()
    count = await db.scalar(
        select(func.count()).where(
            GenerationStep.job_id == uuid.UUID(job_id),
            GenerationStep.kind == StepKind.LESSON,
            GenerationStep.status == StepStatus.SUCCEEDED,
        )
    )
    return int(count or 0)


async def test_a_redis_outage_loses_no_job_and_needs_no_retry(
    pipeline_settings: Settings,
    reference_rows: Any,
    admin_account: Account,
    db: AsyncSession,
    tmp_path: Path,
    spawn_service: SpawnService,
) -> None:
    redis = RestartableRedis(tmp_path / "redis")
    redis.start()
    settings = pipeline_settings.model_copy(update={"redis_url": redis.url})
    try:
        with generator(spawn_service, settings, tmp_path / "data"):
            async with serve(create_app(settings)) as http:
                running = await queue(http, admin_account, "Weathering the storm", 7)
                deadline = time.monotonic() + 30
                while await _succeeded_lessons(db, running["id"]) < 2:
                    assert time.monotonic() < deadline, "the generator made no progress"
                    await asyncio.sleep(0.05)

                redis.stop()
                outage_started = time.monotonic()
                assert await _succeeded_lessons(db, running["id"]) < 7  # really mid-job
                headers = {**admin_account.headers, "Idempotency-Key": "outage-job"}
                during = await queue(http, admin_account, "Queued in the dark", 7, headers=headers)
                # The client retries (it may not have seen the answer): the same job.
                again = await queue(http, admin_account, "Queued in the dark", 7, headers=headers)
                assert again["id"] == during["id"]
                db.expire_all()
                rows = await db.scalar(
                    select(func.count()).where(
                        CourseGenerationJob.parameters["topic"].as_string() == "Queued in the dark"
                    )
                )
                assert rows == 1
                # Requests keep arriving for the rest of the 10 s outage: none is a 500.
                statuses: list[int] = []
                while time.monotonic() - outage_started < OUTAGE_SECONDS:
                    for path in ("/courses", "/categories", "/me", "/admin/generation-jobs"):
                        response = await http.get(path, headers=admin_account.headers)
                        statuses.append(response.status_code)
                        assert response.status_code < 500 or response.status_code == 503, (
                            path,
                            response.text,
                        )
                    await asyncio.sleep(0.2)
                assert statuses.count(200) == len(statuses), statuses
                redis.start()
                back = time.monotonic()

                # No /retry call anywhere: both finish on their own.
                finished = [
                    await wait_for_job(http, admin_account, job["id"], within=40)
                    for job in (running, during)
                ]
                print(f"redis outage: both jobs finished {time.monotonic() - back:.1f} s after")
    finally:
        redis.stop()
    assert [job["status"] for job in finished] == ["SUCCEEDED", "SUCCEEDED"], [
        job["error"] for job in finished
    ]
    per_step = (
        await db.execute(
            select(LlmCall.step_id, func.count())
            .where(LlmCall.job_id.in_([uuid.UUID(running["id"]), uuid.UUID(during["id"])]))
            .group_by(LlmCall.step_id)
        )
    ).all()
    assert len(per_step) == (1 + 7 + 7) + (1 + 7 + 7)  # every model step recorded...
    assert {count for _, count in per_step} == {1}  # ...once
