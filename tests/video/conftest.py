"""Video fixtures: a fake HeyGen over real HTTP, lessons with narration scripts, and workers
running in this event loop against the real database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_api.app import create_app
from momentum_domain.catalog.models import Lesson, VideoStatus
from momentum_domain.config import Settings
from momentum_domain.storage import LocalStorage, ObjectStorage
from momentum_domain.videos.models import LessonVideoScript, VideoJobStatus
from momentum_video_worker.providers import HeyGenProvider, VideoProvider
from momentum_video_worker.worker import VideoWorker
from tests.api.conftest import (  # noqa: F401 - fixtures
    Account,
    MakeCourse,
    admin_account,
    app,
    client,
    learner,
    make_account,
    make_course,
    serve,
)
from tests.video.fake_heygen import API_KEY, AVATAR_ID, VOICE_ID, FakeHeyGen

WEBHOOK_SECRET = "whsec_test_secret"
SCRIPT = (
    "# Welcome\nToday you will learn to hold a chef's knife safely and comfortably.\n\n"
    "Pinch the blade with your thumb and index finger and wrap the others around the handle.\n\n"
    "# Practice\nSlice an onion slowly, fingertips curled under like a claw."
)


S3_BUCKET = "momentum-media-test"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 in server mode on 127.0.0.1, with the media bucket."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=S3_BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture(scope="session")
def api_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The API with a HeyGen webhook secret and its own media folder."""
    return settings.model_copy(
        update={
            "heygen_webhook_secret": WEBHOOK_SECRET,
            "storage_local_dir": tmp_path_factory.mktemp("api-media"),
        }
    )


@pytest.fixture(scope="session")
async def video_client(api_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(api_settings)) as c:
        yield c


@pytest.fixture
def fake_heygen() -> Iterator[FakeHeyGen]:
    with FakeHeyGen().running() as fake:
        yield fake


@pytest.fixture
def video_settings(settings: Settings, fake_heygen: FakeHeyGen, tmp_path: Path) -> Settings:
    return settings.model_copy(
        update={
            "data_dir": tmp_path / "data",
            "storage_local_dir": tmp_path / "media",
            "video_provider": "heygen",
            "heygen_base_url": fake_heygen.base_url,
            "heygen_api_key": API_KEY,
            "heygen_avatar_id": AVATAR_ID,
            "heygen_voice_id": VOICE_ID,
            "heygen_webhook_secret": WEBHOOK_SECRET,
            "heygen_max_concurrent_videos": 3,
            "video_poll_interval_seconds": 0.2,
            "video_lease_seconds": 30,
            "video_max_attempts": 3,
        }
    )


@pytest.fixture
def storage(video_settings: Settings) -> LocalStorage:
    return LocalStorage(video_settings.media_dir)


MakeVideos = Callable[..., Awaitable[list[uuid.UUID]]]


@pytest.fixture
def make_videos(
    make_course: MakeCourse,  # noqa: F811 - the fixture imported above
    sessions: async_sessionmaker[AsyncSession],
) -> MakeVideos:
    """A published course whose first ``count`` lessons each have a pending video request."""
    counter = iter(range(1_000_000))

    async def make(
        count: int, *, trace_context: dict[str, str] | None = None, provider: str = "heygen"
    ) -> list[uuid.UUID]:
        course = await make_course(f"Knife skills {next(counter)}", days=21)
        async with sessions() as session, session.begin():
            lessons = (
                await session.scalars(
                    select(Lesson).where(Lesson.course_id == course.id).order_by(Lesson.day_number)
                )
            ).all()[:count]
            videos = []
            for lesson in lessons:
                lesson.video_status = VideoStatus.PENDING
                video = LessonVideoScript(
                    lesson_id=lesson.id,
                    script=f"{SCRIPT}\n\nDay {lesson.day_number}.",
                    provider=provider,
                    trace_context=trace_context or {},
                )
                session.add(video)
                videos.append(video)
            await session.flush()
            return [video.id for video in videos]

    return make


WorkerFactory = Callable[..., VideoWorker]


@pytest.fixture
async def make_worker(
    video_settings: Settings, sessions: async_sessionmaker[AsyncSession], storage: LocalStorage
) -> AsyncIterator[WorkerFactory]:
    """Workers (with their HeyGen clients) that are closed after the test."""
    providers: list[VideoProvider] = []

    def make(
        *,
        settings: Settings | None = None,
        provider: VideoProvider | None = None,
        store: ObjectStorage | None = None,
        **options: Any,
    ) -> VideoWorker:
        settings = settings or video_settings
        if provider is None:
            provider = HeyGenProvider(settings, base_delay=0.05, max_delay=0.2)
            providers.append(provider)
        return VideoWorker(settings, sessions, store or storage, provider, **options)

    yield make
    for provider in providers:
        await provider.aclose()


@contextlib.asynccontextmanager
async def running(*workers: VideoWorker) -> AsyncIterator[list[asyncio.Task[None]]]:
    """Run workers in the background; stop them gracefully afterwards."""
    tasks = [asyncio.create_task(worker.run()) for worker in workers]
    try:
        yield tasks
    finally:
        for worker in workers:
            worker.stop()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 15)


async def videos_of(
    sessions: async_sessionmaker[AsyncSession], ids: list[uuid.UUID]
) -> list[LessonVideoScript]:
    async with sessions() as session:
        rows = await session.scalars(select(LessonVideoScript).where(LessonVideoScript.id.in_(ids)))
        by_id = {row.id: row for row in rows}
    return [by_id[video_id] for video_id in ids]


async def wait_for_status(
    sessions: async_sessionmaker[AsyncSession],
    ids: list[uuid.UUID],
    statuses: tuple[VideoJobStatus, ...] = (VideoJobStatus.COMPLETED, VideoJobStatus.FAILED),
    *,
    within: float = 20.0,
) -> list[LessonVideoScript]:
    """Poll the rows until every video has one of ``statuses`` (a deadline, not a measurement:
    it only bounds how long a broken worker can hang the suite)."""
    deadline = time.monotonic() + within
    while True:
        rows = await videos_of(sessions, ids)
        if all(row.status in statuses for row in rows):
            return rows
        if time.monotonic() > deadline:
            states = {str(row.id)[:8]: row.status.value for row in rows}
            raise AssertionError(f"videos did not reach {statuses}: {states}")
        await asyncio.sleep(0.05)


async def lessons_of(
    sessions: async_sessionmaker[AsyncSession], videos: list[LessonVideoScript]
) -> list[Lesson]:
    async with sessions() as session:
        rows = await session.scalars(
            select(Lesson).where(Lesson.id.in_([video.lesson_id for video in videos]))
        )
        by_id = {row.id: row for row in rows}
    return [by_id[video.lesson_id] for video in videos]
