"""Video requests as the API changes them: HeyGen's webhooks (the fast path that makes the worker
poll at once), an admin's request for a new video, and the counts by status."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_api.videos.schemas import VideoStats
from momentum_domain.catalog.models import Lesson, VideoStatus
from momentum_domain.commerce.models import ProcessedWebhookEvent
from momentum_domain.errors import BadRequest, Conflict, NotFound, Unprocessable
from momentum_domain.generation.models import LessonVideoScript, VideoJobStatus

WEBHOOK_PROVIDER = "heygen"
# HeyGen signs the raw body with the endpoint's secret: hex HMAC-SHA256 in the ``Signature``
# header (some integrations document it as ``X-HeyGen-Signature``; both are accepted).
SIGNATURE_HEADERS = ("signature", "x-heygen-signature")
# Events that end a render; anything else is acknowledged and ignored.
VIDEO_DONE_EVENTS = ("avatar_video.success", "avatar_video.fail")
AT_PROVIDER = (VideoJobStatus.SUBMITTED, VideoJobStatus.PROCESSING)
IN_PROGRESS = (*AT_PROVIDER, VideoJobStatus.PENDING, VideoJobStatus.DOWNLOADING)


@dataclass(frozen=True)
class WebhookEvent:
    event_id: str
    event_type: str
    video_id: str | None
    callback_id: str | None
    payload: dict[str, Any]


def signature_matches(secret: str, body: bytes, signature: str | None) -> bool:
    if not secret or not signature:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    given = signature.strip().lower().encode("utf-8", "surrogatepass")
    return hmac.compare_digest(expected.encode(), given)


def parse_event(body: bytes) -> WebhookEvent:
    """``{"event_id", "event_type", "event_data": {"video_id", "callback_id", ...}}``. An event
    without an id is identified by its bytes, so a redelivery is still recognised."""
    try:
        payload = json.loads(body)
    except ValueError:
        raise BadRequest("The webhook body is not JSON.") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("event_type"), str):
        raise BadRequest("The webhook body has no event_type.")
    data = payload.get("event_data")
    data = data if isinstance(data, dict) else {}
    event_id = payload.get("event_id")
    return WebhookEvent(
        event_id=str(event_id) if event_id else hashlib.sha256(body).hexdigest(),
        event_type=payload["event_type"],
        video_id=_text(data.get("video_id")),
        callback_id=_text(data.get("callback_id")),
        payload=payload,
    )


class VideoService:
    async def record_webhook(self, session: AsyncSession, event: WebhookEvent) -> bool:
        """Apply an event once; False for a redelivery, which changes nothing."""
        first_time = await session.scalar(
            insert(ProcessedWebhookEvent)
            .values(
                provider=WEBHOOK_PROVIDER,
                event_id=event.event_id[:255],
                event_type=event.event_type[:120],
                payload=event.payload,
            )
            .on_conflict_do_nothing(index_elements=["provider", "event_id"])
            .returning(ProcessedWebhookEvent.id)
        )
        if first_time is None:
            return False
        matches = []
        if event.video_id:
            matches.append(LessonVideoScript.provider_video_id == event.video_id)
        if (request_id := _uuid(event.callback_id)) is not None:
            matches.append(LessonVideoScript.id == request_id)
        if event.event_type in VIDEO_DONE_EVENTS and matches:
            # The worker confirms the outcome with the status API; here it only learns that
            # polling now is worthwhile.
            await session.execute(
                update(LessonVideoScript)
                .where(or_(*matches), LessonVideoScript.status.in_(AT_PROVIDER))
                .values(next_poll_at=func.now())
            )
        return True

    async def request_again(
        self,
        session: AsyncSession,
        lesson_id: uuid.UUID,
        *,
        provider: str,
        trace_context: dict[str, str],
    ) -> LessonVideoScript:
        """Reset the lesson's video request to PENDING so the worker makes a new video."""
        lesson = await session.get(Lesson, lesson_id)
        if lesson is None:
            raise NotFound(f"No lesson {lesson_id}.")
        video = await session.scalar(
            select(LessonVideoScript)
            .where(LessonVideoScript.lesson_id == lesson_id)
            .order_by(LessonVideoScript.created_at.desc())
            .limit(1)
            .with_for_update()
        )
        if video is None:
            raise Unprocessable(
                f"Lesson {lesson_id} has no narration script yet, so there is nothing to film."
            )
        if video.status in IN_PROGRESS:
            raise Conflict(
                f"A video for lesson {lesson_id} is already in progress ({video.status.value}).",
                extra={"video_request_id": str(video.id), "status": video.status.value},
            )
        video.status = VideoJobStatus.PENDING
        video.provider = provider
        video.attempts = 0
        video.error = None
        video.provider_video_id = None
        video.lease_owner = None
        video.lease_expires_at = None
        video.next_poll_at = None
        video.trace_context = trace_context
        # The current video (if any) stays playable until the new one replaces it.
        lesson.video_status = VideoStatus.PENDING
        lesson.video_error = None
        await session.flush()
        return video

    async def stats(self, session: AsyncSession) -> VideoStats:
        rows = await session.execute(
            select(LessonVideoScript.status, func.count()).group_by(LessonVideoScript.status)
        )
        counts = {status.value: 0 for status in VideoJobStatus}
        counts.update({status.value: count for status, count in rows.all()})
        oldest = await session.scalar(
            select(
                func.extract("epoch", func.now() - func.min(LessonVideoScript.created_at))
            ).where(LessonVideoScript.status == VideoJobStatus.PENDING)
        )
        return VideoStats(
            pending=counts[VideoJobStatus.PENDING],
            in_flight=sum(counts[s] for s in (*AT_PROVIDER, VideoJobStatus.DOWNLOADING)),
            completed=counts[VideoJobStatus.COMPLETED],
            failed=counts[VideoJobStatus.FAILED],
            by_status=counts,
            oldest_pending_age_seconds=float(oldest) if oldest is not None else None,
        )


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int) and str(value) else None


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


videos = VideoService()
