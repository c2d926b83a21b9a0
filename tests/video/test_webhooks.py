"""HeyGen's webhooks: only correctly signed events change anything, each event applies once, and
a success event makes the worker fetch the video without waiting for its next poll."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_dev.fakes.heygen import FakeHeyGen
from momentum_domain.config import Settings
from momentum_domain.kit.webhooks import ProcessedWebhookEvent
from momentum_domain.videos.models import LessonVideoScript, VideoJobStatus
from tests.fixtures.videos import (
    WEBHOOK_SECRET,
    MakeVideos,
    WorkerFactory,
    running,
    videos_of,
    wait_for_status,
)

Client = httpx.AsyncClient
LATER = datetime.now(UTC) + timedelta(days=1)


def signed(payload: dict[str, Any], secret: str = WEBHOOK_SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Signature": signature, "Content-Type": "application/json"}


def success(video_id: str, event_id: str = "evt_1") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": "avatar_video.success",
        "event_data": {"video_id": video_id, "url": "https://files.example/v.mp4"},
        "created_at": "2026-11-21T10:00:00Z",
    }


async def submitted_video(
    make_videos: MakeVideos, sessions: async_sessionmaker[AsyncSession], provider_video_id: str
) -> uuid.UUID:
    [video_id] = await make_videos(1)
    async with sessions() as session, session.begin():
        await session.execute(
            update(LessonVideoScript)
            .where(LessonVideoScript.id == video_id)
            .values(
                status=VideoJobStatus.PROCESSING,
                provider_video_id=provider_video_id,
                next_poll_at=LATER,
            )
        )
    return video_id


async def event_count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(ProcessedWebhookEvent)) or 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Signature": "0" * 64},
        {"Signature": hmac.new(b"another secret", b"{}", hashlib.sha256).hexdigest()},
        {"Signature": "é".encode("latin-1") * 64},  # not ASCII: refused, not a 500
        {},
    ],
    ids=["wrong", "other-secret", "not-ascii", "missing"],
)
async def test_unsigned_or_wrongly_signed_events_are_rejected(
    video_client: Client,
    make_videos: MakeVideos,
    sessions: async_sessionmaker[AsyncSession],
    headers: dict[str, str],
) -> None:
    video_id = await submitted_video(make_videos, sessions, "hg-bad-signature")
    body, _ = signed(success("hg-bad-signature"))

    response = await video_client.post("/webhooks/heygen", content=body, headers=headers)

    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 401
    [video] = await videos_of(sessions, [video_id])
    assert video.next_poll_at == LATER  # nothing changed
    assert await event_count(sessions) == 0


async def test_a_tampered_body_is_rejected(
    video_client: Client, make_videos: MakeVideos, sessions: async_sessionmaker[AsyncSession]
) -> None:
    video_id = await submitted_video(make_videos, sessions, "hg-tampered")
    _, headers = signed(success("hg-someone-else"))
    body = json.dumps(success("hg-tampered")).encode()

    response = await video_client.post("/webhooks/heygen", content=body, headers=headers)

    assert response.status_code == 401
    [video] = await videos_of(sessions, [video_id])
    assert video.next_poll_at == LATER


async def test_success_event_makes_the_video_due_and_a_duplicate_is_a_no_op(
    video_client: Client, make_videos: MakeVideos, sessions: async_sessionmaker[AsyncSession]
) -> None:
    video_id = await submitted_video(make_videos, sessions, "hg-ok")
    body, headers = signed(success("hg-ok"))

    first = await video_client.post("/webhooks/heygen", content=body, headers=headers)
    [video] = await videos_of(sessions, [video_id])
    async with sessions() as session, session.begin():
        await session.execute(
            update(LessonVideoScript)
            .where(LessonVideoScript.id == video_id)
            .values(next_poll_at=LATER)
        )
    again = await video_client.post("/webhooks/heygen", content=body, headers=headers)

    assert first.status_code == 200
    assert first.json() == {"received": True, "duplicate": False}
    assert video.next_poll_at is not None
    assert video.next_poll_at <= datetime.now(UTC)
    assert again.status_code == 200
    assert again.json() == {"received": True, "duplicate": True}
    [after] = await videos_of(sessions, [video_id])
    assert after.next_poll_at == LATER  # the redelivery changed nothing
    assert await event_count(sessions) == 1


async def test_signature_is_also_accepted_as_x_heygen_signature(
    video_client: Client, make_videos: MakeVideos, sessions: async_sessionmaker[AsyncSession]
) -> None:
    video_id = await submitted_video(make_videos, sessions, "hg-alias")
    body, headers = signed(success("hg-alias", event_id="evt_alias"))

    response = await video_client.post(
        "/webhooks/heygen", content=body, headers={"X-HeyGen-Signature": headers["Signature"]}
    )

    assert response.status_code == 200
    [video] = await videos_of(sessions, [video_id])
    assert video.next_poll_at is not None
    assert video.next_poll_at <= datetime.now(UTC)


async def test_failure_event_is_matched_by_callback_id(
    video_client: Client, make_videos: MakeVideos, sessions: async_sessionmaker[AsyncSession]
) -> None:
    video_id = await submitted_video(make_videos, sessions, "hg-failing")
    payload = {
        "event_type": "avatar_video.fail",
        "event_data": {"video_id": "hg-unknown", "msg": "bad", "callback_id": str(video_id)},
    }
    body, headers = signed(payload)

    response = await video_client.post("/webhooks/heygen", content=body, headers=headers)

    assert response.status_code == 200
    [video] = await videos_of(sessions, [video_id])
    assert video.next_poll_at is not None
    assert video.next_poll_at <= datetime.now(UTC)
    assert video.status is VideoJobStatus.PROCESSING  # the worker confirms with the status API


async def test_signed_garbage_is_a_bad_request(video_client: Client, database_url: str) -> None:
    body = b"not json"
    signature = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()

    response = await video_client.post(
        "/webhooks/heygen", content=body, headers={"Signature": signature}
    )

    assert response.status_code == 400
    assert response.json()["detail"] == "The webhook body is not JSON."


async def test_success_webhook_gets_the_video_downloaded_before_its_next_poll(
    video_client: Client,
    fake_heygen: FakeHeyGen,
    make_videos: MakeVideos,
    make_worker: WorkerFactory,
    video_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # Polls 15 minutes apart: only the webhook can get this video stored within the test.
    settings = video_settings.model_copy(update={"video_poll_interval_seconds": 3600})
    fake_heygen.render_seconds = 0.2
    ids = await make_videos(1)

    async with running(make_worker(settings=settings)):
        [video] = await wait_for_status(sessions, ids, (VideoJobStatus.SUBMITTED,))
        rendered = fake_heygen.videos[video.provider_video_id or ""]
        await asyncio.sleep(rendered.done_at - time.monotonic())  # HeyGen calls once it is done
        polls_before = fake_heygen.status_calls[rendered.id]
        body, headers = signed(success(rendered.id, event_id="evt_fast"))
        response = await video_client.post("/webhooks/heygen", content=body, headers=headers)
        [video] = await wait_for_status(sessions, ids, within=10)

    assert response.status_code == 200
    assert polls_before == 0
    assert video.status is VideoJobStatus.COMPLETED
