"""Video fixtures: a fake HeyGen over real HTTP, lessons with narration scripts, and workers
running in this event loop against the real database (helpers in tests/fixtures/videos.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_api.app import create_app
from momentum_dev.fakes.heygen import API_KEY, AVATAR_ID, VOICE_ID, FakeHeyGen
from momentum_domain.catalog.models import Lesson, VideoStatus
from momentum_domain.config import Settings
from momentum_domain.kit.storage import LocalStorage, ObjectStorage
from momentum_domain.videos.models import LessonVideoScript
from momentum_video_worker.providers import HeyGenProvider, VideoProvider
from momentum_video_worker.worker import VideoWorker
from tests.fixtures.app import MakeCourse, serve
from tests.fixtures.moto import REGION
from tests.fixtures.videos import S3_BUCKET, SCRIPT, WEBHOOK_SECRET, MakeVideos, WorkerFactory


@pytest.fixture(scope="session")
def s3_endpoint(moto_endpoint: str) -> str:
    """The session's moto server (tests/fixtures/moto.py), with the media bucket."""
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION)
    s3.create_bucket(Bucket=S3_BUCKET)
    return moto_endpoint


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


@pytest.fixture
def make_videos(
    make_course: MakeCourse,
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
