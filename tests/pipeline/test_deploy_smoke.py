"""``momentum smoke --expect-version``: what the deploy runs after a rollout. It passes only when
the API reports the version just deployed and a worker of every kind beats at that version.

The real API is served over HTTP (uvicorn on a free port) and the CLI runs exactly as in the
workflow; the heartbeats come from a real generator worker (Dramatiq on the real Redis) and a
real video worker loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn
from redis.asyncio import Redis

from momentum_api import cli
from momentum_api.app import create_app
from momentum_domain.config import Settings
from momentum_domain.kit.db import create_engine, create_sessionmaker
from momentum_domain.kit.heartbeat import Heartbeat
from momentum_domain.kit.storage import create_storage
from momentum_generator.worker import start_worker, stop_worker
from momentum_video_worker.providers import create_provider
from momentum_video_worker.worker import VideoWorker
from tests.fixtures.generation import ProbeProvider

NEW, OLD = "9c4e2b7", "3f2c1a9"


@pytest.fixture
def deployed(pipeline_settings: Settings) -> Settings:
    """The settings of processes started from the image tagged NEW."""
    return pipeline_settings.model_copy(update={"version": NEW})


@pytest.fixture
def api_url(deployed: Settings) -> Iterator[str]:
    """The API served over real HTTP, as the smoke test reaches it behind the load balancer."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(deployed), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the API did not start"
        assert time.monotonic() < deadline, "the API did not start in time"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(30)
    sock.close()


@pytest.fixture
def generator(deployed: Settings, probe: ProbeProvider, database_url: str) -> Iterator[None]:
    started = start_worker(deployed, threads=2, provider_factory=lambda s, r: probe)
    yield
    stop_worker(*started)


@contextlib.asynccontextmanager
async def video_worker(settings: Settings) -> AsyncIterator[None]:
    """The video worker's loop and heartbeat, as ``python -m momentum_video_worker`` runs it."""
    engine = create_engine(settings, application_name="momentum-tests-video-worker")
    provider = create_provider(settings)
    async with Redis.from_url(settings.redis_url) as redis:
        worker = VideoWorker(
            settings,
            create_sessionmaker(engine),
            create_storage(settings),
            provider,
            tick_seconds=0.1,
            heartbeat=Heartbeat(redis, "video-worker", worker_id="vw", version=settings.version),
        )
        task = asyncio.create_task(worker.run())
        try:
            yield
        finally:
            worker.stop()
            await asyncio.wait_for(task, 15)
            await provider.aclose()
            await engine.dispose()


async def wait_for_workers(api_url: str, *kinds: str, within: float = 30) -> None:
    """Until each kind has beaten (the generator beats on its sweeper's 5 s tick)."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=api_url) as http:
        while time.monotonic() < deadline:
            workers = (await http.get("/health/workers")).json()["workers"]
            if all(workers[kind] for kind in kinds):
                return
            await asyncio.sleep(0.2)
    raise AssertionError(f"no heartbeat from {kinds} in {within}s: {workers}")


async def smoke(api_url: str, expect: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The workflow's command line, off the event loop (the video worker runs on it)."""
    argv = ["smoke", "--base-url", api_url, "--expect-version", expect]
    code = await asyncio.to_thread(cli.main, argv)
    return code, capsys.readouterr().out


async def test_passes_when_the_api_and_every_worker_run_the_version(
    api_url: str, deployed: Settings, generator: None, capsys: pytest.CaptureFixture[str]
) -> None:
    async with video_worker(deployed):
        await wait_for_workers(api_url, "generator", "video-worker")
        code, out = await smoke(api_url, NEW, capsys)
        # The connection options also work before the command, as they always did.
        argv = ["--base-url", api_url, "smoke", "--expect-version", NEW]
        before = await asyncio.to_thread(cli.main, argv)

    assert code == 0, out
    assert f"API runs {NEW}" in out
    assert "generator x1, video-worker x1" in out
    assert before == 0


async def test_fails_without_a_live_video_worker(
    api_url: str, generator: None, capsys: pytest.CaptureFixture[str]
) -> None:
    await wait_for_workers(api_url, "generator")

    code, out = await smoke(api_url, NEW, capsys)

    assert code == 1
    assert f"no live video-worker at {NEW} (live: video-worker: none)" in out
    assert f"API runs {NEW}" in out  # the failure names the workers, not the API


async def test_fails_when_a_worker_kind_still_runs_the_old_version(
    api_url: str, deployed: Settings, generator: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # ECS rolled the video worker back: its tasks run the previous image.
    async with video_worker(deployed.model_copy(update={"version": OLD})):
        await wait_for_workers(api_url, "generator", "video-worker")
        code, out = await smoke(api_url, NEW, capsys)

    assert code == 1
    assert f"no live video-worker at {NEW} (live: video-worker: {OLD} x1)" in out


async def test_fails_when_the_api_runs_another_version(
    api_url: str, deployed: Settings, generator: None, capsys: pytest.CaptureFixture[str]
) -> None:
    async with video_worker(deployed):
        await wait_for_workers(api_url, "generator", "video-worker")
        # The smoke test of a rollout the circuit breaker undid: the old API still answers.
        code, out = await smoke(api_url, OLD, capsys)

    assert code == 1
    assert f"API runs '{NEW}', expected '{OLD}'" in out


async def test_fails_when_the_api_cannot_be_reached(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"

    code, out = await smoke(closed, NEW, capsys)

    assert code == 1
    assert "no version report" in out
