"""Admin endpoints: ask for a lesson's video again, and count videos by status."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_dev.fakes.heygen import FakeHeyGen
from momentum_domain.audit.models import AuditLog
from momentum_domain.catalog.models import Lesson, VideoStatus
from momentum_domain.videos.models import LessonVideoScript, VideoJobStatus
from tests.fixtures.app import Account, MakeCourse
from tests.fixtures.videos import (
    MakeVideos,
    WorkerFactory,
    lessons_of,
    running,
    videos_of,
    wait_for_status,
)

Client = httpx.AsyncClient


async def set_status(
    sessions: async_sessionmaker[AsyncSession], video_id: uuid.UUID, status: VideoJobStatus
) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            update(LessonVideoScript)
            .where(LessonVideoScript.id == video_id)
            .values(
                status=status,
                attempts=3,
                error="Provider failed: boom",
                provider_video_id=f"hg-old-{video_id}",
            )
        )


async def test_failed_video_is_requested_again_and_made(
    video_client: Client,
    admin_account: Account,
    fake_heygen: FakeHeyGen,
    make_videos: MakeVideos,
    make_worker: WorkerFactory,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    [video_id] = await make_videos(1)
    await set_status(sessions, video_id, VideoJobStatus.FAILED)
    [failed] = await videos_of(sessions, [video_id])

    response = await video_client.post(
        f"/admin/lessons/{failed.lesson_id}/video", headers=admin_account.headers
    )

    assert response.status_code == 202
    body = response.json()
    assert body["id"] == str(video_id)
    assert body["status"] == "PENDING"
    assert body["attempts"] == 0
    assert body["error"] is None
    [lesson] = await lessons_of(sessions, [failed])
    assert lesson.video_status is VideoStatus.PENDING
    async with sessions() as session:
        entry = await session.scalar(
            select(AuditLog).where(AuditLog.action == "lesson.video.request")
        )
    assert entry is not None
    assert entry.resource_id == str(failed.lesson_id)
    assert entry.actor_id == admin_account.user.id

    async with running(make_worker()):
        [video] = await wait_for_status(sessions, [video_id])
    assert video.status is VideoJobStatus.COMPLETED
    assert video.provider_video_id != f"hg-old-{video_id}"


@pytest.mark.parametrize(
    "status", [VideoJobStatus.PENDING, VideoJobStatus.PROCESSING, VideoJobStatus.DOWNLOADING]
)
async def test_a_video_in_progress_cannot_be_requested_again(
    video_client: Client,
    admin_account: Account,
    make_videos: MakeVideos,
    sessions: async_sessionmaker[AsyncSession],
    status: VideoJobStatus,
) -> None:
    [video_id] = await make_videos(1)
    await set_status(sessions, video_id, status)
    [video] = await videos_of(sessions, [video_id])

    response = await video_client.post(
        f"/admin/lessons/{video.lesson_id}/video", headers=admin_account.headers
    )

    assert response.status_code == 409
    assert response.json()["status"] == status.value
    [unchanged] = await videos_of(sessions, [video_id])
    assert unchanged.attempts == 3


async def test_unknown_lesson_is_404_and_a_lesson_without_script_is_422(
    video_client: Client,
    admin_account: Account,
    make_course: MakeCourse,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    course = await make_course("No scripts", days=7)
    async with sessions() as session:
        lesson_id = await session.scalar(select(Lesson.id).where(Lesson.course_id == course.id))

    unknown = await video_client.post(
        f"/admin/lessons/{uuid.uuid4()}/video", headers=admin_account.headers
    )
    without_script = await video_client.post(
        f"/admin/lessons/{lesson_id}/video", headers=admin_account.headers
    )

    assert unknown.status_code == 404
    assert without_script.status_code == 422
    assert "no narration script" in without_script.json()["detail"]


async def test_video_endpoints_are_for_admins(
    video_client: Client, learner: Account, make_videos: MakeVideos
) -> None:
    await make_videos(1)

    anonymous = await video_client.get("/admin/videos/stats")
    learners = await video_client.get("/admin/videos/stats", headers=learner.headers)
    request = await video_client.post(
        f"/admin/lessons/{uuid.uuid4()}/video", headers=learner.headers
    )

    assert anonymous.status_code == 401
    assert learners.status_code == 403
    assert request.status_code == 403


async def test_stats_count_videos_by_status(
    video_client: Client,
    admin_account: Account,
    make_videos: MakeVideos,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ids = await make_videos(6)
    for video_id, status in zip(
        ids[2:],
        [
            VideoJobStatus.SUBMITTED,
            VideoJobStatus.DOWNLOADING,
            VideoJobStatus.COMPLETED,
            VideoJobStatus.FAILED,
        ],
        strict=True,
    ):
        await set_status(sessions, video_id, status)

    response = await video_client.get("/admin/videos/stats", headers=admin_account.headers)

    assert response.status_code == 200
    stats = response.json()
    assert stats["pending"] == 2
    assert stats["in_flight"] == 2
    assert stats["completed"] == 1
    assert stats["failed"] == 1
    assert stats["by_status"]["PROCESSING"] == 0
    assert stats["oldest_pending_age_seconds"] >= 0
