from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from momentum_domain.videos.models import LessonVideoScript, VideoJobStatus


class VideoRequestOut(msgspec.Struct):
    id: uuid.UUID
    lesson_id: uuid.UUID
    status: VideoJobStatus
    provider: str
    attempts: int
    error: str | None
    updated_at: datetime


class MediaLinkOut(msgspec.Struct):
    url: str
    expires_at: datetime


class WebhookReceipt(msgspec.Struct):
    received: bool
    duplicate: bool


def video_request_out(video: LessonVideoScript) -> VideoRequestOut:
    return VideoRequestOut(
        id=video.id,
        lesson_id=video.lesson_id,
        status=video.status,
        provider=video.provider,
        attempts=video.attempts,
        error=video.error,
        updated_at=video.updated_at,
    )
