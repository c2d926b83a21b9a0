"""Drills on real video worker processes (``python -m momentum_video_worker``) and the real
PostgreSQL, with the production lease settings:

- kill -9 a worker with videos in flight: another worker, idle until then because the dead one
  held every place at the provider, finishes them within a minute, none submitted twice and no
  partial file left (HeyGen, then the local renderer killed mid-render);
- SIGTERM: the stopping worker hands its videos back at once and the other takes them;
- PostgreSQL going away and coming back under a worker: one warning line, one info line, no
  traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_dev.fakes.heygen import API_KEY, AVATAR_ID, VOICE_ID, FakeHeyGen
from momentum_domain.videos.models import VideoJobStatus
from tests.fixtures.videos import MakeVideos, videos_of, wait_for_status
from tests.fixtures.workers import SpawnService

# The bar: a dead worker's videos are moving again well within a minute.
RECOVERY_DEADLINE_SECONDS = 60.0
# What a partial or abandoned render or download looks like on disk.
PARTIAL_SUFFIXES = (".partial.mp4", ".work", ".lock", ".new")


@pytest.fixture
def worker_env(database_url: str, redis_url: str, tmp_path: Path) -> dict[str, str]:
    """A worker's environment: the test database, default (production) lease settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("MOMENTUM_VIDEO_LEASE")  # never shortened here
    }
    return env | {
        "MOMENTUM_DATABASE_URL": database_url,
        "MOMENTUM_REDIS_URL": redis_url,
        "MOMENTUM_DATA_DIR": str(tmp_path / "data"),
        "MOMENTUM_STORAGE_LOCAL_DIR": str(tmp_path / "media"),
        "MOMENTUM_LOG_FORMAT": "json",
        "MOMENTUM_HEYGEN_MAX_CONCURRENT_VIDEOS": "3",
        # Polling HeyGen every second (not every minute) keeps the drill short; it changes
        # nothing about how soon a dead worker's videos are taken over.
        "MOMENTUM_VIDEO_POLL_INTERVAL_SECONDS": "1",
    }


@pytest.fixture
def heygen_env(worker_env: dict[str, str], fake_heygen: FakeHeyGen) -> dict[str, str]:
    return worker_env | {
        "MOMENTUM_VIDEO_PROVIDER": "heygen",
        "MOMENTUM_HEYGEN_BASE_URL": fake_heygen.base_url,
        "MOMENTUM_HEYGEN_API_KEY": API_KEY,
        "MOMENTUM_HEYGEN_AVATAR_ID": AVATAR_ID,
        "MOMENTUM_HEYGEN_VOICE_ID": VOICE_ID,
    }


def log_records(path: Path) -> list[dict[str, Any]]:
    records = []
    for line in path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            records.append(json.loads(line))
    return records


def leftovers(*roots: Path) -> list[str]:
    """Partial renders, scratch folders, locks, and storage's hidden temporary files."""
    return sorted(
        str(path)
        for root in roots
        if root.exists()
        for path in root.rglob("*")
        if path.name.endswith(PARTIAL_SUFFIXES) or path.name.startswith(".")
    )


async def wait_until(condition: Callable[[], Any], *, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(condition):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def started(log: Path) -> None:
    """Until the worker logs that it runs (imports take several seconds on a busy machine),
    then a few of its ticks."""
    await wait_until(
        lambda: any(" started (" in r.get("message", "") for r in log_records(log)),
        within=60,
        what=f"{log.stem} to start",
    )
    await asyncio.sleep(1.5)


async def owners(
    sessions: async_sessionmaker[AsyncSession], ids: list[uuid.UUID]
) -> dict[uuid.UUID, str | None]:
    return {video.id: video.lease_owner for video in await videos_of(sessions, ids)}


async def wait_for_takeover(
    sessions: async_sessionmaker[AsyncSession],
    ids: list[uuid.UUID],
    orphaned: list[uuid.UUID],
    since: float,
) -> tuple[float, float]:
    """Seconds from ``since`` until the ``orphaned`` videos and then all ``ids`` completed."""
    orphans_done = None
    deadline = since + RECOVERY_DEADLINE_SECONDS
    while True:
        rows = {row.id: row for row in await videos_of(sessions, ids)}
        now = time.monotonic()
        if orphans_done is None and all(
            rows[i].status is VideoJobStatus.COMPLETED for i in orphaned
        ):
            orphans_done = now - since
        if orphans_done is not None and all(
            row.status in (VideoJobStatus.COMPLETED, VideoJobStatus.FAILED) for row in rows.values()
        ):
            return orphans_done, now - since
        if now > deadline:
            states = {str(i)[:8]: (r.status.value, r.lease_owner) for i, r in rows.items()}
            raise AssertionError(
                f"not done {RECOVERY_DEADLINE_SECONDS:.0f} s after the kill: {states}"
            )
        await asyncio.sleep(0.1)


async def test_a_killed_workers_heygen_videos_are_taken_over_within_a_minute(
    fake_heygen: FakeHeyGen,
    make_videos: MakeVideos,
    sessions: async_sessionmaker[AsyncSession],
    heygen_env: dict[str, str],
    spawn_service: SpawnService,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    fake_heygen.render_seconds = 600.0  # still rendering at HeyGen when their worker dies
    ids = await make_videos(6)
    doomed = spawn_service("doomed", "momentum_video_worker", heygen_env)
    await wait_until(lambda: len(fake_heygen.creations) == 3, within=30, what="3 submissions")
    survivor = spawn_service("survivor", "momentum_video_worker", heygen_env)
    await started(tmp_path / "survivor.log")  # and idle: the other holds HeyGen's three places
    assert len(fake_heygen.creations) == 3
    orphaned = [i for i, owner in (await owners(sessions, ids)).items() if owner]
    assert len(orphaned) == 3

    doomed.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    doomed.wait()
    with fake_heygen.lock:  # HeyGen finishes them 5 s after the kill, the rest in 2 s each
        for video in fake_heygen.videos.values():
            video.render_seconds = killed_at + 5 - video.created_at
        fake_heygen.render_seconds = 2.0
    taken_over, all_done = await wait_for_takeover(sessions, ids, orphaned, killed_at)

    print(f"kill -9 drill (HeyGen): orphans done {taken_over:.1f} s, all {all_done:.1f} s")
    record_property("orphans_completed_seconds", round(taken_over, 1))
    record_property("all_completed_seconds", round(all_done, 1))
    videos = await videos_of(sessions, ids)
    assert all(video.status is VideoJobStatus.COMPLETED for video in videos)
    assert all(video.attempts == 0 for video in videos)
    # Taken over by polling the existing HeyGen video: not one submitted twice.
    assert fake_heygen.creations == {str(video_id): 1 for video_id in ids}
    assert len(fake_heygen.requests_to("POST", "/v3/videos")) == 6
    assert fake_heygen.peak_rendering <= 3
    assert leftovers(tmp_path / "data", tmp_path / "media") == []
    survivor.send_signal(signal.SIGTERM)
    assert survivor.wait(timeout=30) == 0


async def test_a_worker_killed_mid_render_leaves_no_partial_file(
    make_videos: MakeVideos,
    sessions: async_sessionmaker[AsyncSession],
    worker_env: dict[str, str],
    spawn_service: SpawnService,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    renders = tmp_path / "data" / "video-renders"
    ids = await make_videos(3, provider="local")
    local_env = worker_env | {"MOMENTUM_VIDEO_PROVIDER": "local"}
    doomed = spawn_service("doomed", "momentum_video_worker", local_env)
    await wait_until(lambda: any(renders.glob("*.work/*")), within=30, what="a render under way")
    doomed.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    doomed.wait()
    assert any(renders.glob("*.work")), "the render should have been cut short"
    orphaned = [i for i, owner in (await owners(sessions, ids)).items() if owner]
    assert orphaned

    spawn_service("survivor", "momentum_video_worker", local_env)
    taken_over, all_done = await wait_for_takeover(sessions, ids, orphaned, killed_at)

    print(f"kill -9 drill (local): orphans done {taken_over:.1f} s, all {all_done:.1f} s")
    record_property("orphans_completed_seconds", round(taken_over, 1))
    videos = await videos_of(sessions, ids)
    assert all(video.status is VideoJobStatus.COMPLETED for video in videos)
    assert all(video.attempts == 0 for video in videos)  # a lost render is not a failure
    assert leftovers(tmp_path / "data", tmp_path / "media") == []
    assert list(renders.glob("*.mp4")) == []  # stored, then dropped from the render folder


async def test_sigterm_hands_videos_back_to_another_worker_at_once(
    fake_heygen: FakeHeyGen,
    make_videos: MakeVideos,
    sessions: async_sessionmaker[AsyncSession],
    heygen_env: dict[str, str],
    spawn_service: SpawnService,
    tmp_path: Path,
) -> None:
    fake_heygen.render_seconds = 60.0  # none can finish before the handover is checked
    # Polls a minute apart, as in production: a handed-back video must not wait for its next.
    env = heygen_env | {"MOMENTUM_VIDEO_POLL_INTERVAL_SECONDS": "60"}
    ids = await make_videos(3)
    stopping = spawn_service("stopping", "momentum_video_worker", env)
    await wait_until(lambda: len(fake_heygen.creations) == 3, within=30, what="3 submissions")
    spawn_service("taker", "momentum_video_worker", env)
    await started(tmp_path / "taker.log")
    held = await owners(sessions, ids)
    assert len(set(held.values())) == 1  # all three with the first worker

    stopping.send_signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    exit_code = await asyncio.to_thread(stopping.wait, 15)
    # Handed back (no lease left to run out): the other worker owns them within a tick or two.
    while (taken := await owners(sessions, ids)) and not all(
        owner not in (None, held[i]) for i, owner in taken.items()
    ):
        assert time.monotonic() < stopped_at + 5, f"not taken over: {taken}"
        await asyncio.sleep(0.05)
    handed_over = time.monotonic() - stopped_at
    with fake_heygen.lock:  # HeyGen finishes them now
        for video in fake_heygen.videos.values():
            video.render_seconds = 0
    videos = await wait_for_status(sessions, ids, within=30)

    print(f"SIGTERM drill: the other worker held all three {handed_over:.1f} s after SIGTERM")
    assert exit_code == 0
    assert all(video.status is VideoJobStatus.COMPLETED for video in videos)
    assert fake_heygen.creations == {str(video_id): 1 for video_id in ids}
    stopped = log_records(tmp_path / "stopping.log")
    assert not [r for r in stopped if r.get("level") in ("WARNING", "ERROR")], stopped


class SwitchableProxy:
    """A TCP proxy to PostgreSQL on a fixed local port that can be cut (connections reset,
    new ones refused) and restored, standing in for a database outage."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._pipes):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._pipes |= {writer, upstream_writer}
        await asyncio.gather(
            self._pipe(reader, upstream_writer),
            self._pipe(upstream_reader, writer),
            return_exceptions=True,
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            self._pipes.discard(writer)
            writer.transport.abort()


@pytest.fixture
async def proxies() -> AsyncIterator[Callable[[str], Any]]:
    """Switchable proxies to the servers behind URLs; the URL through each proxy comes back."""
    opened: list[SwitchableProxy] = []

    async def through_proxy(url: str) -> tuple[SwitchableProxy, str]:
        target = make_url(url)
        proxy = SwitchableProxy(target.host or "127.0.0.1", target.port or 0)
        await proxy.up()
        opened.append(proxy)
        proxied = target.set(host="127.0.0.1", port=proxy.port)
        return proxy, proxied.render_as_string(hide_password=False)

    yield through_proxy
    for proxy in opened:
        with contextlib.suppress(Exception):
            await proxy.down()


async def test_an_outage_logs_one_line_when_it_starts_and_one_when_it_ends(
    make_videos: MakeVideos,
    sessions: async_sessionmaker[AsyncSession],
    heygen_env: dict[str, str],
    database_url: str,
    redis_url: str,
    proxies: Callable[[str], Any],
    spawn_service: SpawnService,
    tmp_path: Path,
) -> None:
    database, database_via_proxy = await proxies(database_url)
    redis, redis_via_proxy = await proxies(redis_url)
    env = heygen_env | {
        "MOMENTUM_DATABASE_URL": database_via_proxy,
        "MOMENTUM_REDIS_URL": redis_via_proxy,
    }
    worker = spawn_service("worker", "momentum_video_worker", env)
    log = tmp_path / "worker.log"
    await started(log)

    await database.down()
    await asyncio.sleep(8)  # ticks and lease renewals failing all along
    during = log_records(log)
    await database.up()
    ids = await make_videos(1)  # work after the outage proves the worker is back
    videos = await wait_for_status(sessions, ids, within=30)
    # Redis next (a tick beats only once it has reached the database).
    await redis.down()
    await asyncio.sleep(8)  # a heartbeat attempted on every tick
    during += log_records(log)
    await redis.up()
    await asyncio.sleep(6)  # a heartbeat or two
    worker.send_signal(signal.SIGTERM)
    await asyncio.to_thread(worker.wait, 15)

    records = log_records(log)
    messages = [r["message"] for r in records if r.get("level") != "DEBUG"]
    noisy = [r for r in records if r.get("level") in ("WARNING", "ERROR", "CRITICAL")]
    assert videos[0].status is VideoJobStatus.COMPLETED
    # One warning per dependency, logged while it was down, each a line and not a traceback...
    assert len(noisy) == 2, noisy
    assert all(record in during for record in noisy)
    assert sum("PostgreSQL unavailable" in r["message"] for r in noisy) == 1
    assert sum("heartbeat to Redis failed" in r["message"] for r in noisy) == 1
    assert not any("exception" in record for record in records)
    assert not any("Traceback" in message for message in messages)
    # ...and one line each when it is back.
    assert sum("PostgreSQL available again" in m for m in messages) == 1
    assert sum("heartbeat to Redis works again" in m for m in messages) == 1
