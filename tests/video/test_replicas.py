"""Several workers on one database: no video is submitted or downloaded twice, the provider's
concurrency limit holds across replicas, and a crashed worker's videos are finished by another
once its leases expire."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

from sqlalchemy import String, func, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_dev.fakes.heygen import FakeHeyGen
from momentum_domain.config import Settings
from momentum_domain.kit.storage import LocalStorage
from momentum_domain.videos.models import LessonVideoScript, VideoJobStatus
from momentum_video_worker.repository import VideoRepository
from tests.fixtures.videos import MakeVideos, WorkerFactory, running, wait_for_status


async def test_two_workers_share_the_work_without_overlap(
    fake_heygen: FakeHeyGen,
    make_videos: MakeVideos,
    make_worker: WorkerFactory,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    fake_heygen.render_seconds = (0.1, 0.4)
    ids = await make_videos(10)
    first, second = make_worker(worker_id="worker-a"), make_worker(worker_id="worker-b")

    async with running(first, second):
        videos = await wait_for_status(sessions, ids, within=30)

    assert all(video.status is VideoJobStatus.COMPLETED for video in videos)
    assert fake_heygen.creations == {str(video_id): 1 for video_id in ids}
    assert sorted(fake_heygen.downloads.values()) == [1] * len(ids)
    # Each replica may hold 3 videos, but together they never have more than 3 at HeyGen.
    assert fake_heygen.peak_rendering <= 3


async def test_a_killed_workers_videos_are_finished_by_another(
    fake_heygen: FakeHeyGen,
    make_videos: MakeVideos,
    make_worker: WorkerFactory,
    video_settings: Settings,
    storage: LocalStorage,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    settings = video_settings.model_copy(update={"video_lease_seconds": 1.5})
    fake_heygen.render_seconds = 0.2
    fake_heygen.download_chunk_delay = 0.05  # ~0.35 s per download: time to die in the middle
    ids = await make_videos(4)
    doomed = make_worker(settings=settings, worker_id="doomed")
    crash = asyncio.create_task(doomed.run())
    # Kill it mid-download: its task is cancelled and no lease is handed back.
    await asyncio.to_thread(fake_heygen.download_started.wait, 10)
    crash.cancel()
    await asyncio.gather(crash, return_exceptions=True)
    held = await wait_for_status(
        sessions,
        ids,
        tuple(s for s in VideoJobStatus if s is not VideoJobStatus.COMPLETED),
        within=1,
    )
    assert any(video.lease_owner == "doomed" for video in held)
    fake_heygen.download_chunk_delay = 0

    async with running(make_worker(settings=settings, worker_id="survivor")):
        videos = await wait_for_status(sessions, ids, within=30)

    assert all(video.status is VideoJobStatus.COMPLETED for video in videos)
    assert fake_heygen.creations == {str(video_id): 1 for video_id in ids}  # none resubmitted
    for video in videos:
        content = storage.path_for(video.storage_key or "").read_bytes()
        assert hashlib.sha256(content).hexdigest() == video.sha256
        assert video.sha256 == fake_heygen.sha256(video.provider_video_id or "")
    leftovers = [p.name for p in storage.root.rglob("*") if p.is_file() and p.suffix != ".mp4"]
    assert leftovers == []  # the interrupted download left no partial file


async def test_a_worker_killed_mid_submission_does_not_create_a_second_video(
    fake_heygen: FakeHeyGen,
    make_videos: MakeVideos,
    make_worker: WorkerFactory,
    video_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    settings = video_settings.model_copy(update={"video_lease_seconds": 1})
    fake_heygen.create_delay = 0.5  # HeyGen has created the video but not yet answered
    [video_id] = await make_videos(1)
    doomed = make_worker(settings=settings, worker_id="doomed")
    crash = asyncio.create_task(doomed.run())
    await asyncio.to_thread(fake_heygen.video_created.wait, 10)
    crash.cancel()
    await asyncio.gather(crash, return_exceptions=True)
    fake_heygen.create_delay = 0

    async with running(make_worker(settings=settings, worker_id="survivor")):
        [video] = await wait_for_status(sessions, [video_id])

    assert video.status is VideoJobStatus.COMPLETED
    creates = fake_heygen.requests_to("POST", "/v3/videos")
    assert len(creates) == 2  # the survivor asked again, with the same idempotency key...
    assert creates[0].headers["idempotency-key"] == creates[1].headers["idempotency-key"]
    assert fake_heygen.creations[str(video_id)] == 1  # ...and got the same video back
    assert video.provider_video_id in fake_heygen.videos


async def test_videos_released_until_their_next_poll_still_hold_places_at_the_provider(
    make_videos: MakeVideos, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A video released with its next poll in a minute renders on at HeyGen, leased or not:
    counting only leased ones would let a claim send the provider more than its limit."""
    at_heygen = (await make_videos(6))[:3]
    async with sessions() as session, session.begin():
        await session.execute(
            update(LessonVideoScript)
            .where(LessonVideoScript.id.in_(at_heygen))
            .values(
                status=VideoJobStatus.PROCESSING,
                provider_video_id=func.gen_random_uuid().cast(String),
                lease_owner=None,
                lease_expires_at=None,
                next_poll_at=func.now() + timedelta(minutes=1),
            )
        )
    repository = VideoRepository(sessions, owner="worker-c", lease_seconds=20)
    waiting = await repository.claim(provider="heygen", slots=3, provider_limit=3)
    assert waiting == []  # HeyGen renders three already
    more_room = await repository.claim(provider="heygen", slots=3, provider_limit=5)
    assert len(more_room) == 2
