"""Every metric of the shared table (momentum_domain.metric_names: what infra's alarms, scaling
policies and dashboard read) reaches an OTLP receiver from the real process that produces it:
the generator (``python -m momentum_generator``) running a job that succeeds and one that fails
(with a dead letter left in the broker), and the video worker (``python -m
momentum_video_worker``, local renderer) picking up the videos of the first. Each arrives with
the table's name, unit and description, from the service the table names, with no attribute
the table does not list, and with values that match the database and the broker."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_api.app import create_app
from momentum_domain import metric_names
from momentum_domain.config import Settings
from momentum_domain.generation.models import LlmCall
from momentum_domain.metric_names import METRICS
from momentum_domain.notifications.models import OutboxMessage, OutboxStatus
from momentum_generator.metrics import broker_keys
from tests.fixtures.app import Account, serve
from tests.fixtures.generation import queue, wait_for_job
from tests.fixtures.otlp_receiver import OtlpReceiver, running_receiver
from tests.fixtures.workers import SpawnService, service_env, stop_service

Client = httpx.AsyncClient
EXPORT_INTERVAL_SECONDS = 0.5
PRICES = {"offline": [0.001, 0.002]}


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    yield from running_receiver()


@pytest.fixture
async def tight_api(pipeline_settings: Settings) -> AsyncIterator[Client]:
    """The API queueing jobs with a budget the first model call uses up: they fail."""
    tight = pipeline_settings.model_copy(update={"generation_job_budget_usd": 0.000001})
    async with serve(create_app(tight)) as http:
        yield http


def _exporting(
    receiver: OtlpReceiver, settings: Settings, data_dir: Path, **variables: str
) -> dict[str, str]:
    """A service's environment, exporting its metrics to ``receiver`` every interval."""
    data_dir.mkdir()
    return service_env(
        settings.database_url,
        settings.redis_url or "",
        data_dir,
        MOMENTUM_ENV="test",
        MOMENTUM_OTEL_EXPORTER="otlp",
        MOMENTUM_OTEL_ENDPOINT=receiver.endpoint,
        MOMENTUM_OTEL_METRIC_EXPORT_INTERVAL_SECONDS=str(EXPORT_INTERVAL_SECONDS),
        **variables,
    )


def _tail(log: Path) -> str:
    """The end of a process's output, for a failure message."""
    return log.read_text()[-3000:]


async def _until(
    condition: Callable[[], bool], what: str, process: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert process.poll() is None, f"exited while waiting for {what}:\n{_tail(log)}"
        assert time.monotonic() < deadline, f"no {what} within 60 s:\n{_tail(log)}"
        await asyncio.sleep(0.1)


def _total(receiver: OtlpReceiver, spec: metric_names.MetricSpec, **attributes: str) -> float:
    return sum(
        point.value
        for point in receiver.points(spec.name)
        if attributes.items() <= point.attributes.items()
    )


def _last(receiver: OtlpReceiver, spec: metric_names.MetricSpec) -> float | None:
    points = receiver.points(spec.name)
    return points[-1].value if points else None


async def test_every_table_metric_is_exported_by_its_running_service(
    api: Client,
    tight_api: Client,
    admin_account: Account,
    db: AsyncSession,
    pipeline_settings: Settings,
    receiver: OtlpReceiver,
    tmp_path: Path,
    spawn_service: SpawnService,
) -> None:
    # A message that died before this test: the dead-letter gauge must read the broker's key.
    ready, _, dead = broker_keys("dramatiq")
    async with Redis.from_url(pipeline_settings.redis_url or "") as redis:
        await redis.zadd(dead, {"an-earlier-message": time.time() * 1000})
    generator_log = tmp_path / "generator.log"
    env = _exporting(
        receiver,
        pipeline_settings,
        tmp_path / "generator",
        MOMENTUM_LLM_PRICES=json.dumps(PRICES),
        # Lessons take longer than the sweeper's 5 s tick, which reads the backlog: it sees
        # the job's steps in flight.
        MOMENTUM_LLM_OFFLINE_LATENCY=json.dumps({"lesson": 6}),
    )
    generator = spawn_service("generator", "momentum_generator", env)
    try:
        succeeding = await queue(api, admin_account, "Sourdough baking", 7)
        failing = await queue(tight_api, admin_account, "Expensive topic", 7)
        assert (await wait_for_job(api, admin_account, succeeding["id"]))["status"] == "SUCCEEDED"
        assert (await wait_for_job(api, admin_account, failing["id"]))["status"] == "FAILED"
        billed, calls, input_tokens, output_tokens = (
            await db.execute(
                select(
                    func.sum(LlmCall.cost_usd),
                    func.count(),
                    func.sum(LlmCall.input_tokens),
                    func.sum(LlmCall.output_tokens),
                )
            )
        ).one()
        billed = float(billed or 0)
        assert billed > 0
        assert input_tokens > 0
        assert output_tokens > 0
        # The job's notices wait in the outbox (no relay here).
        outbox = await db.scalar(
            select(func.count()).where(OutboxMessage.status == OutboxStatus.PENDING)
        )
        assert outbox
        # The rows hold each call's cost rounded to 6 decimals; the counter adds it unrounded.
        rounding = calls * 0.5e-6
        await _until(
            lambda: (
                _total(receiver, metric_names.GENERATION_JOBS_FINISHED) == 2
                and _total(receiver, metric_names.GENERATION_COST) >= billed - rounding
                and _total(receiver, metric_names.GENERATION_TOKENS, direction="output")
                == output_tokens
                and bool(receiver.points(metric_names.GENERATION_QUEUE_DEPTH.name))
                # A snapshot taken after the jobs ended.
                and _last(receiver, metric_names.NOTIFICATIONS_OUTBOX_PENDING) == outbox
            ),
            "generation metrics",
            generator,
            generator_log,
        )
    finally:
        assert stop_service(generator, within=60) == 0, _tail(generator_log)

    video_log = tmp_path / "video-worker.log"
    # One video at a time: the job's other six wait, pending, while the metrics go out.
    env = _exporting(
        receiver,
        pipeline_settings,
        tmp_path / "video-worker",
        MOMENTUM_VIDEO_PROVIDER="local",
        MOMENTUM_HEYGEN_MAX_CONCURRENT_VIDEOS="1",
    )
    video_worker = spawn_service("video-worker", "momentum_video_worker", env)
    try:
        await _until(
            lambda: all(
                receiver.points(spec.name) for spec in METRICS if spec.service == "video-worker"
            ),
            "video metrics",
            video_worker,
            video_log,
        )
    finally:
        assert stop_service(video_worker, within=60) == 0, _tail(video_log)

    received = {point.name for point in receiver.points()}
    assert received <= {spec.name for spec in METRICS}, "a metric missing from the table"
    # The API runs in this process here, exporting nothing: its request histogram is checked
    # through the real app in tests/api/test_request_metrics.py.
    for spec in (spec for spec in METRICS if spec.service != "api"):
        points = receiver.points(spec.name)
        assert points, f"{spec.name}: never received"
        assert {p.service for p in points} == {f"momentum-{spec.service}"}, spec.name
        assert {(p.unit, p.description) for p in points} == {(spec.unit, spec.description)}
        assert all(set(p.attributes) == set(spec.attributes) for p in points), spec.name
        if spec.kind == "counter":
            # Deltas: the collector's EMF exporter passes them through as they are.
            assert {(p.kind, p.temporality, p.monotonic) for p in points} == {
                ("sum", "delta", True)
            }, spec.name
        else:
            assert {p.kind for p in points} == {"gauge"}, spec.name

    # Counted once per job, when it reached its outcome; every model call's cost, once.
    assert _total(receiver, metric_names.GENERATION_JOBS_FINISHED) == 2
    assert _total(receiver, metric_names.GENERATION_JOBS_FAILED) == 1
    assert _total(receiver, metric_names.GENERATION_COST) == pytest.approx(billed, abs=rounding)
    assert max(p.value for p in receiver.points(metric_names.GENERATION_QUEUE_DEPTH.name)) > 0
    tokens = metric_names.GENERATION_TOKENS
    assert _total(receiver, tokens, direction="input") == input_tokens
    assert _total(receiver, tokens, direction="output") == output_tokens
    assert {p.attributes["direction"] for p in receiver.points(tokens.name)} == {
        "input",
        "output",
    }
    assert _last(receiver, metric_names.GENERATION_BROKER_DEAD_LETTERS) == 1
    # The offline model neither throttles nor fails: a zero series and a closed breaker.
    throttles = receiver.points(metric_names.GENERATION_PROVIDER_THROTTLES.name)
    assert {(p.attributes["provider"], p.value) for p in throttles} == {("offline", 0)}
    breaker = receiver.points(metric_names.GENERATION_PROVIDER_BREAKER_OPEN.name)
    assert {(p.attributes["provider"], p.value) for p in breaker} == {("offline", 0)}
    # Every step was taken off the queue by the time the generator stopped.
    async with Redis.from_url(pipeline_settings.redis_url or "") as redis:
        assert await redis.llen(ready) == 0
    assert _last(receiver, metric_names.GENERATION_BROKER_QUEUE_DEPTH) == 0
    for heartbeat in (metric_names.GENERATOR_HEARTBEAT, metric_names.VIDEO_WORKER_HEARTBEAT):
        assert {p.value for p in receiver.points(heartbeat.name)} == {1}, heartbeat.name
    # The video worker's first snapshot: the job's seven videos, at most one of them started.
    first = {
        spec: receiver.points(spec.name)[0].value
        for spec in (
            metric_names.VIDEOS_PENDING,
            metric_names.VIDEOS_IN_FLIGHT,
            metric_names.VIDEOS_COMPLETED,
            metric_names.VIDEOS_FAILED,
        )
    }
    assert sum(first.values()) == 7
    assert first[metric_names.VIDEOS_PENDING] >= 6
    ages = receiver.points(metric_names.VIDEOS_OLDEST_PENDING_AGE.name)
    assert all(point.value > 0 for point in ages)
