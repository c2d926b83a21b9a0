"""The Redis topology infra deploys, started here in the same mode: one primary (cluster mode
disabled) with a replica following it, over TLS where this machine's redis-server has it. The
real generator process runs a whole job on it. On a Redis Cluster (what ElastiCache Serverless
is) Dramatiq's broker fails, while every Lua script of ours still runs: each declares its keys."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import dramatiq
import pytest
from redis import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import MovedError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_api.app import create_app
from momentum_domain.catalog.models import Lesson
from momentum_domain.config import Settings
from momentum_domain.kit.queue import GENERATION_QUEUE, RUN_GENERATION_STEP, create_broker
from momentum_generator.concurrency import RedisSemaphore
from momentum_generator.llm.budget import TokenBudget
from tests.fixtures.app import Account, serve
from tests.fixtures.generation import queue, wait_for_job
from tests.fixtures.redis_servers import (
    make_tls,
    redis_server_binary,
    replication_group,
    supports_tls,
    three_shard_cluster,
)
from tests.fixtures.workers import SpawnService, service_env, stop_service


@pytest.fixture(params=["tcp", "tls"])
def tls_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Path | None:
    if request.param == "tcp":
        return None
    if not supports_tls(redis_server_binary()):
        pytest.skip(f"{redis_server_binary()} was built without TLS (Debian's redis-server has it)")
    return tmp_path


async def test_the_generator_completes_a_job_on_a_primary_with_a_replica(
    tls_dir: Path | None,
    pipeline_settings: Settings,
    admin_account: Account,
    db: AsyncSession,
    tmp_path: Path,
    spawn_service: SpawnService,
) -> None:
    tls = make_tls(tls_dir) if tls_dir else None
    with replication_group(tmp_path / "redis", tls=tls) as group:
        settings = pipeline_settings.model_copy(update={"redis_url": group.primary_url})
        latency = json.dumps({"lesson": 0.05})
        env = service_env(
            settings.database_url,
            settings.redis_url,
            tmp_path / "data",
            MOMENTUM_LLM_OFFLINE_LATENCY=latency,
        )
        worker = spawn_service("generator", "momentum_generator", env, "--threads", "8")
        try:
            async with serve(create_app(settings)) as http:
                queued = await queue(http, admin_account, "Replicated Redis", 7)
                job = await wait_for_job(http, admin_account, queued["id"], within=120)
            # The replica holds what a failover would promote: the broker's worker registry.
            with Redis.from_url(group.replica_url) as replica:
                assert replica.zcard("dramatiq:__heartbeats__") >= 1
        finally:
            stop_service(worker)  # a worker that ignores SIGTERM fails the test
    assert job["status"] == "SUCCEEDED", job["error"]
    lessons = await db.scalar(
        select(func.count()).where(Lesson.course_id == uuid.UUID(job["course_id"]))
    )
    assert lessons == 7


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[list[int]]:
    with three_shard_cluster(tmp_path / "cluster") as ports:
        yield ports


async def test_dramatiqs_broker_fails_on_a_redis_cluster(cluster: list[int]) -> None:
    """Why infra deploys no cluster: the broker's plain client meets keys on other shards."""
    broker = create_broker(Settings(redis_url=f"redis://127.0.0.1:{cluster[0]}/0"))
    message: dramatiq.Message[object] = dramatiq.Message(
        queue_name=GENERATION_QUEUE,
        actor_name=RUN_GENERATION_STEP,
        args=("step",),
        kwargs={},
        options={},
    )
    broker.declare_queue(GENERATION_QUEUE)

    # Its dispatch script reaches keys it does not declare: the shard redirects (MOVED).
    def enqueue_a_few() -> None:
        for _ in range(20):  # a message id lands on another shard's slot soon enough
            broker.enqueue(message.copy(message_id=str(uuid.uuid4())))

    with pytest.raises(MovedError):
        enqueue_a_few()


async def test_our_lua_scripts_declare_every_key_they_touch(cluster: list[int]) -> None:
    """On a cluster a script may touch only the keys it declares (in their slot): each of
    ours runs there, routed by its declared key, and does its job."""
    client = RedisCluster(host="127.0.0.1", port=cluster[0])
    try:
        semaphore = RedisSemaphore(client, "generation:lesson-slots", limit=1, lease_seconds=30)  # type: ignore[arg-type]
        async with semaphore.slot():
            acquired_twice = asyncio.create_task(_enter(semaphore))
            await asyncio.sleep(0.2)
            assert not acquired_twice.done()  # the one slot is held
        await asyncio.wait_for(acquired_twice, timeout=5)

        budget = TokenBudget(client, key_prefix="momentum:llm:bedrock", tokens_per_minute=1000)  # type: ignore[arg-type]
        reservation = await budget.reserve(600)
        assert reservation.window is not None  # enforced: the script ran, not the fallback
        await budget.release(reservation, 400)
        assert await budget.used() == 400
    finally:
        await client.aclose()


async def _enter(semaphore: RedisSemaphore) -> None:
    async with semaphore.slot():
        pass
