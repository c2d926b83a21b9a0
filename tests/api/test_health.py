from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from momentum_api.app import create_app
from momentum_domain.config import Settings
from momentum_domain.kit import heartbeat
from momentum_domain.kit.heartbeat import HEARTBEAT_MAX_AGE_SECONDS, Heartbeat, heartbeat_key
from tests.fixtures.app import serve

Client = httpx.AsyncClient


async def test_live_reports_the_running_version(settings: Settings) -> None:
    async with serve(create_app(settings.model_copy(update={"version": "3f2c1a9"}))) as client:
        response = await client.get("/health/live")
    assert response.json() == {"status": "ok", "version": "3f2c1a9"}


async def test_workers_reports_live_heartbeats_by_kind_and_version(
    client: Client, settings: Settings
) -> None:
    assert (await client.get("/health/workers")).json()["workers"] == {
        "generator": {},
        "video-worker": {},
    }
    async with Redis.from_url(settings.redis_url) as redis:
        for worker, version in (("a", "new"), ("b", "new"), ("c", "old")):
            assert await Heartbeat(redis, "generator", worker_id=worker, version=version).beat()
        beat = Heartbeat(redis, "video-worker", worker_id="v", version="new")
        assert await beat.beat()
        assert not await beat.beat()  # within its interval: no second write

    body = (await client.get("/health/workers")).json()
    assert body["workers"] == {"generator": {"new": 2, "old": 1}, "video-worker": {"new": 1}}
    assert body["version"] == settings.version
    assert body["max_age_seconds"] == HEARTBEAT_MAX_AGE_SECONDS


async def test_a_stale_heartbeat_is_not_a_live_worker(
    client: Client, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_ago = time.time() - HEARTBEAT_MAX_AGE_SECONDS - 5
    async with Redis.from_url(settings.redis_url) as redis:
        monkeypatch.setattr(heartbeat.time, "time", lambda: long_ago)
        assert await Heartbeat(redis, "video-worker", worker_id="stuck", version="new").beat()
        monkeypatch.undo()
        assert (await client.get("/health/workers")).json()["workers"]["video-worker"] == {}
        # The next live beat prunes it.
        assert await Heartbeat(redis, "video-worker", worker_id="fresh", version="new").beat()
        members = await redis.zrange(heartbeat_key("video-worker"), 0, -1)
    assert len(members) == 1
    assert (await client.get("/health/workers")).json()["workers"]["video-worker"] == {"new": 1}


async def test_ready_when_postgres_and_redis_answer(client: Client) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def client_with(settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[Client]:
    app = create_app(settings.model_copy(update=request.param(_closed_port())))
    async with serve(app) as client:
        yield client


@pytest.mark.parametrize(
    ("client_with", "down"),
    [
        (
            lambda port: {"database_url": f"postgresql+asyncpg://postgres@127.0.0.1:{port}/x"},
            "database",
        ),
        (lambda port: {"redis_url": f"redis://127.0.0.1:{port}/0"}, "redis"),
    ],
    indirect=["client_with"],
    ids=["postgres-down", "redis-down"],
)
async def test_not_ready_when_a_dependency_is_down(client_with: Client, down: str) -> None:
    response = await client_with.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"][down] == "unavailable"
    assert body["checks"]["database" if down == "redis" else "redis"] == "ok"
    assert down in body["detail"]
    assert int(response.headers["Retry-After"]) > 0
    # Liveness does not depend on either.
    assert (await client_with.get("/health/live")).status_code == 200
    # Heartbeats live in Redis: without it the workers' report is unavailable, not empty.
    workers = await client_with.get("/health/workers")
    assert workers.status_code == (503 if down == "redis" else 200)
    if down == "redis":
        assert int(workers.headers["Retry-After"]) > 0
