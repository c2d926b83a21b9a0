"""Lesson videos as the platform changes and counts them: HeyGen's webhooks (the fast path that
makes a worker poll at once), an admin's request for a new video, and the counts by status that
the admin API shows and the video worker exports. The video workers drive each video's render
(momentum_video_worker)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.audit.service import RequestOrigin, audit
from momentum_domain.catalog.events import CatalogChanged
from momentum_domain.catalog.models import Lesson, VideoStatus
from momentum_domain.errors import Conflict, NotFound, Unprocessable
from momentum_domain.kit.unit_of_work import commit, publish
from momentum_domain.kit.webhooks import record_once
from momentum_domain.videos.heygen_events import VIDEO_DONE_EVENTS, WebhookEvent
from momentum_domain.videos.models import (
    AT_PROVIDER,
    IN_FLIGHT,
    IN_PROGRESS,
    LessonVideoScript,
    VideoJobStatus,
)

HEYGEN = "heygen"
_UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True, slots=True)
class VideoStats:
    pending: int
    # Submitted, rendering at the provider, or downloading.
    in_flight: int
    completed: int
    failed: int
    by_status: dict[str, int]
    oldest_pending_age_seconds: float | None


def video_key(lesson_id: uuid.UUID, provider_video_id: str) -> str:
    """Where a lesson's video is stored: one file per render, named after the provider's id."""
    return f"videos/{lesson_id}/{_UNSAFE_KEY_CHARS.sub('_', provider_video_id)[:120]}.mp4"


class VideoService:
    async def record_webhook(self, session: AsyncSession, event: WebhookEvent) -> bool:
        """Apply a HeyGen event once and commit; False for a redelivery, which changes
        nothing."""
        first_time = await record_once(
            session, HEYGEN, event.event_id, event_type=event.event_type, payload=event.payload
        )
        matches = []
        if event.video_id:
            matches.append(LessonVideoScript.provider_video_id == event.video_id)
        if (request_id := event.video_request_id) is not None:
            matches.append(LessonVideoScript.id == request_id)
        if first_time and event.event_type in VIDEO_DONE_EVENTS and matches:
            # The worker confirms the outcome with the status API; here it only learns that
            # polling now is worthwhile.
            await session.execute(
                update(LessonVideoScript)
                .where(or_(*matches), LessonVideoScript.status.in_(AT_PROVIDER))
                .values(next_poll_at=func.now())
            )
        await commit(session)
        return first_time

    async def request_again(
        self,
        session: AsyncSession,
        lesson_id: uuid.UUID,
        *,
        provider: str,
        trace_context: dict[str, str],
        actor_id: uuid.UUID,
        origin: RequestOrigin | None,
    ) -> LessonVideoScript:
        """Reset the lesson's video request to PENDING so a worker makes a new video."""
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
        await audit.record(
            session, actor_id=actor_id, action="lesson.video.request", resource_type="lesson",
            resource_id=lesson_id, origin=origin,
            details={"video_request_id": str(video.id), "provider": video.provider},
        )  # fmt: skip
        publish(session, CatalogChanged())
        await commit(session)
        return video

    def queue_scripts(
        self,
        session: AsyncSession,
        scripts: Mapping[uuid.UUID, str],
        *,
        job_id: uuid.UUID | None,
        provider: str,
        trace_context: dict[str, Any],
    ) -> None:
        """A PENDING video per lesson (``scripts``: lesson id to narration), for the video
        worker to render once this transaction commits."""
        session.add_all(
            LessonVideoScript(
                lesson_id=lesson_id,
                job_id=job_id,
                script=script,
                provider=provider,
                status=VideoJobStatus.PENDING,
                trace_context=trace_context,
            )
            for lesson_id, script in scripts.items()
        )

    async def stats(self, session: AsyncSession) -> VideoStats:
        """Videos by status, and how long the oldest pending one has waited."""
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
            in_flight=sum(counts[status] for status in IN_FLIGHT),
            completed=counts[VideoJobStatus.COMPLETED],
            failed=counts[VideoJobStatus.FAILED],
            by_status=counts,
            oldest_pending_age_seconds=float(oldest) if oldest is not None else None,
        )


videos = VideoService()
