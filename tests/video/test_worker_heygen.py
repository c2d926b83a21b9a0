"""The worker against the fake HeyGen: the happy path, 429 with Retry-After, 5xx, failed renders,
slow renders, timeouts, graceful shutdown, traces and metrics."""

from __future__ import annotations

import asyncio
import hashlib
import itertools

from opentelemetry import propagate, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_dev.fakes.heygen import AVATAR_ID, VOICE_ID, FakeHeyGen, Fault
from momentum_domain.catalog.models import Lesson, VideoStatus
from momentum_domain.config import Settings
from momentum_domain.kit.storage import LocalStorage
from momentum_domain.kit.telemetry import setup_tracing
from momentum_domain.videos.models import LessonVideoScript, VideoJobStatus
from tests.fixtures.videos import (
    MakeVideos,
    WorkerFactory,
    lessons_of,
    running,
    videos_of,
    wait_for_status,
)

COMPLETED = VideoJobStatus.COMPLETED
FAILED = VideoJobStatus.FAILED


async def test_videos_are_submitted_polled_and_stored(
    fake_heygen: FakeHeyGen,
    make_videos: MakeVideos,
    make_worker: WorkerFactory,
    sessions: async_sessionmaker[AsyncSession],
    storage: LocalStorage,
) -> None:
    fake_heygen.render_seconds = 0.3
    ids = await make_videos(3)

    async with running(make_worker()):
        videos = await wait_for_status(sessions, ids)

    lessons = await lessons_of(sessions, videos)
    for video, lesson in zip(videos, lessons, strict=True):
        assert video.status is COMPLETED, video.error
        assert video.provider == "heygen"
        content = storage.path_for(video.storage_key or "").read_bytes()
        assert video.sha256 == hashlib.sha256(content).hexdigest()
        assert video.sha256 == fake_heygen.sha256(video.provider_video_id or "")
        assert video.size_bytes == len(content) == fake_heygen.video_size
        assert video.duration_seconds == 12  # HeyGen's 12.5 s, rounded
        assert video.lease_owner is None
        assert video.attempts == 0
        assert video.error is None
        assert lesson.video_status is VideoStatus.READY
        assert lesson.video_url == f"/media/{video.storage_key}"
        assert lesson.video_duration_seconds == 12
    assert fake_heygen.creations == {str(video_id): 1 for video_id in ids}
    assert all(count == 1 for count in fake_heygen.downloads.values())
    create = fake_heygen.requests_to("POST", "/v3/videos")[0]
    assert create.body is not None
    assert create.body["type"] == "avatar"
    assert create.body["avatar_id"] == AVATAR_ID
    assert create.body["voice_id"] == VOICE_ID
    assert create.body["script"].startswith("# Welcome")
    assert create.headers["idempotency-key"].startswith("momentum-video-")


async def test_rate_limited_submission_waits_for_retry_after(
    fake_heygen: FakeHeyGen,
    make_videos: MakeVideos,
    make_worker: WorkerFactory,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    fake_heygen.create_faults.append(Fault(429, {"Retry-After": "1"}, "rate_limit_exceeded"))
    ids = await make_videos(1)

    async with running(make_worker()):
        [video] = await wait_for_status(sessions, ids)

    assert video.status is COMPLETED
    first, second = fake_heygen.requests_to("POST", "/v3/videos")
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.95  # Retry-After honoured
    assert fake_heygen.creations[str(video.id)] == 1
    assert video.attempts == 0  # being told to wait is not a failed attempt


async def test_long_retry_after_reschedules_the_video_instead_of_blocking(
    fake_heygen: FakeHeyGen,
    make_videos: MakeVideos,
    make_worker: WorkerFactory,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    fake_heygen.create_faults.append(Fault(429, {"Retry-After": "120"}, "rate_limit_exceeded"))
    ids = await make_videos(1)

    async with running(make_worker()):
        for _ in range(100):
            [video] = await videos_of(sessions, ids)
            if fake_heygen.requests_to("POST", "/v3/videos") and video.lease_owner is None:
                break
            await asyncio.sleep(0.05)

    assert video.status is VideoJobStatus.PENDING
    assert video.attempts == 0
    async with sessions() as session:
        wait = await session.scalar(
            select(LessonVideoScript.next_poll_at - LessonVideoScript.updated_at).where(
                LessonVideoScript.id == video.id
            )
        )
    assert wait is not None
    assert wait.total_seconds() > 100
    assert len(fake_heygen.requests_to("POST", "/v3/videos")) == 1


async def test_server_errors_are_retried_without_creating_two_videos(
    fake_heygen: FakeHeyGen,
    make_videos: MakeVideos,
    make_worker: WorkerFactory,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    fake_heygen.create_faults.extend([Fault(503), Fault(500)])
    fake_heygen.status_faults.extend([Fault(502), Fault(503)])
    ids = await make_videos(2)

    async with running(make_worker()):
        videos = await wait_for_status(sessions, ids)

    assert [video.status for video in videos] == [COMPLETED, COMPLETED]
    assert fake_heygen.creations == {str(video_id): 1 for video_id in ids}
    statuses = [r.status for r in fake_heygen.requests_to("POST", "/v3/videos")]
    assert statuses.count(503) == statuses.count(500) == 1


async def test_failed_renders_are_retried_then_marked_failed(
    fake_heygen: FakeHeyGen,
    make_videos: MakeVideos,
    make_worker: WorkerFactory,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    fake_heygen.fail_renders_with = "Avatar look is not available"
    ids = await make_videos(1)

    async with running(make_worker()):
        [video] = await wait_for_status(sessions, ids, within=30)

    [lesson] = await lessons_of(sessions, [video])
    assert video.status is FAILED
    assert video.attempts == 3
    assert video.error == "Provider failed: Avatar look is not available"
    assert lesson.video_status is VideoStatus.FAILED
    assert lesson.video_error == video.error
    assert lesson.video_url is None
    assert lesson.content_markdown
    creates = fake_heygen.requests_to("POST", "/v3/videos")
    assert len({r.headers["idempotency-key"] for r in creates}) == 3  # one new video per attempt
    assert fake_heygen.creations[str(video.id)] == 3


async def test_slow_renders_are_polled_with_backoff(
    fake_heygen: FakeHeyGen,
    make_videos: MakeVideos,
    make_worker: WorkerFactory,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    fake_heygen.render_seconds = 1.5
    ids = await make_videos(1)

    async with running(make_worker()):
        [video] = await wait_for_status(sessions, ids)

    assert video.status is COMPLETED
    polls = [r.at for r in fake_heygen.requests_to("GET", f"/v3/videos/{video.provider_video_id}")]
    assert len(polls) >= 3
    gaps = [later - earlier for earlier, later in itertools.pairwise(polls)]
    assert gaps[-1] > gaps[0]  # the schedule backs off


async def test_a_render_that_never_finishes_times_out(
    fake_heygen: FakeHeyGen,
    make_videos: MakeVideos,
    make_worker: WorkerFactory,
    video_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    fake_heygen.render_seconds = 3600
    settings = video_settings.model_copy(update={"video_max_attempts": 1})
    ids = await make_videos(1)

    async with running(make_worker(settings=settings, processing_timeout_seconds=0.5)):
        [video] = await wait_for_status(sessions, ids)

    assert video.status is FAILED
    assert video.error == "Timed out waiting for the provider"


async def test_rejected_request_counts_as_a_failed_attempt(
    fake_heygen: FakeHeyGen,
    make_videos: MakeVideos,
    make_worker: WorkerFactory,
    video_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    settings = video_settings.model_copy(update={"video_max_attempts": 1})
    fake_heygen.create_faults.append(Fault(400, code="invalid_parameter"))
    ids = await make_videos(1)

    async with running(make_worker(settings=settings)):
        [video] = await wait_for_status(sessions, ids)

    assert video.status is FAILED
    assert video.error is not None
    assert "HTTP 400 invalid_parameter" in video.error


async def test_graceful_stop_hands_waiting_videos_back(
    fake_heygen: FakeHeyGen,
    make_videos: MakeVideos,
    make_worker: WorkerFactory,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    fake_heygen.render_seconds = 3600
    ids = await make_videos(2)
    worker = make_worker()
    task = asyncio.create_task(worker.run())
    await wait_for_status(sessions, ids, (VideoJobStatus.SUBMITTED, VideoJobStatus.PROCESSING))

    worker.stop()
    await asyncio.wait_for(task, 5)

    videos = await videos_of(sessions, ids)
    assert all(video.lease_owner is None and video.lease_expires_at is None for video in videos)
    assert all(video.provider_video_id for video in videos)  # another worker resumes polling
    assert worker.held == set()


async def test_video_spans_join_the_generation_trace(
    fake_heygen: FakeHeyGen,
    make_videos: MakeVideos,
    make_worker: WorkerFactory,
    video_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    exporter = InMemorySpanExporter()
    setup_tracing(video_settings, "momentum-tests", processor=SimpleSpanProcessor(exporter))
    assert isinstance(trace.get_tracer_provider(), TracerProvider)
    with trace.get_tracer("tests").start_as_current_span("generation job") as job_span:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
    ids = await make_videos(1, trace_context=carrier)

    async with running(make_worker()):
        await wait_for_status(sessions, ids)

    spans = [
        s for s in exporter.get_finished_spans() if s.attributes.get("video.id") == str(ids[0])
    ]
    names = {span.name for span in spans}
    assert {"video.submit", "video.poll", "video.download"} <= names
    job_trace = job_span.get_span_context().trace_id
    assert all(span.context.trace_id == job_trace for span in spans)
    assert all(span.parent is not None for span in spans)


async def test_counts_are_published_as_metrics(
    fake_heygen: FakeHeyGen,
    make_videos: MakeVideos,
    make_worker: WorkerFactory,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    fake_heygen.render_seconds = 3600
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("tests")
    ids = await make_videos(4)
    async with sessions() as session, session.begin():
        await session.execute(
            LessonVideoScript.__table__.update()
            .where(LessonVideoScript.id == ids[3])
            .values(status=FAILED, error="gave up")
        )

    async with running(make_worker(meter=meter)):
        await wait_for_status(sessions, ids[:3], (VideoJobStatus.SUBMITTED,))
        await asyncio.sleep(0.1)

    data = reader.get_metrics_data()
    values = {
        metric.name: metric.data.data_points[0].value
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert values["videos.failed"] == 1
    assert values["videos.pending"] + values["videos.in_flight"] == 3
    assert values["videos.oldest_pending_age_seconds"] >= 0 or values["videos.pending"] == 0


async def test_lesson_waits_in_processing_while_the_provider_renders(
    fake_heygen: FakeHeyGen,
    make_videos: MakeVideos,
    make_worker: WorkerFactory,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    fake_heygen.render_seconds = 3600
    ids = await make_videos(1)

    async with running(make_worker()):
        [video] = await wait_for_status(sessions, ids, (VideoJobStatus.SUBMITTED,))
        async with sessions() as session:
            lesson = await session.scalar(select(Lesson).where(Lesson.id == video.lesson_id))

    assert lesson is not None
    assert lesson.video_status is VideoStatus.PROCESSING
