"""The worker's reads and writes on ``lesson_video_scripts`` (and the lesson it belongs to).

A worker owns a video while ``lease_owner`` names it and ``lease_expires_at`` is in the future;
every write is fenced on the lease (``WHERE lease_owner = me``), so a worker whose lease ran out
and was taken over cannot overwrite the new owner's progress. Times come from the database's
clock, never the worker's.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_domain.catalog.models import Lesson, VideoStatus
from momentum_domain.kit.storage import StoredObject
from momentum_domain.kit.unit_of_work import transaction
from momentum_domain.videos.models import AT_PROVIDER, IN_FLIGHT, LessonVideoScript, VideoJobStatus
from momentum_domain.videos.service import VideoStats, videos
from momentum_video_worker.outages import is_connection_error

logger = logging.getLogger(__name__)

Video = LessonVideoScript
# Serialises claims across replicas so the count of videos at the provider stays within the
# limit (an arbitrary application-wide constant for pg_advisory_xact_lock).
CLAIM_LOCK_KEY = 0x6D6F6D5F76696465


class LeaseLost(Exception):
    """Another worker owns the video now (our lease expired); drop it without writing."""


@dataclass
class ClaimedVideo:
    id: uuid.UUID
    lesson_id: uuid.UUID
    title: str
    script: str
    status: VideoJobStatus
    attempts: int
    provider_video_id: str | None
    trace_context: dict[str, Any] = field(default_factory=dict)
    polls: int = 0


class VideoRepository:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, owner: str, lease_seconds: float
    ) -> None:
        self._sessions = sessions
        self.owner = owner
        self._lease = timedelta(seconds=lease_seconds)
        # The videos whose leases this worker holds.
        self.held: set[uuid.UUID] = set()

    async def claim(self, *, provider: str, slots: int, provider_limit: int) -> list[ClaimedVideo]:
        """Lease up to ``slots`` videos: first those at the provider or mid-download that no
        live worker holds (a dead worker's at once, a handed-back one when its poll is due),
        then pending ones while fewer than ``provider_limit`` videos are at the provider under
        live leases across all replicas."""
        if slots <= 0:
            return []
        live = Video.lease_expires_at >= func.now()
        due = or_(Video.next_poll_at.is_(None), Video.next_poll_at <= func.now())
        # A lease left to run out means its worker died: the video needs an owner now, whatever
        # its poll schedule says. Released leases have no owner.
        abandoned = and_(Video.lease_owner.is_not(None), Video.lease_expires_at < func.now())
        handed_back = and_(Video.lease_owner.is_(None), due)
        async with transaction(self._sessions) as session:
            await session.execute(select(func.pg_advisory_xact_lock(CLAIM_LOCK_KEY)))
            taken = await _lockable(
                session,
                and_(
                    Video.status.in_(IN_FLIGHT),
                    Video.provider == provider,
                    or_(abandoned, handed_back),
                ),
                Video.next_poll_at.asc().nulls_first(),
                slots,
            )
            ids = [video_id for video_id, _ in taken]
            # What holds a place at the provider: every video it is rendering, whoever holds it
            # (one released until its next poll renders on), and one being submitted under a
            # live lease. A dead worker's videos are taken over above, not left to block.
            held_at_provider = await session.scalar(
                select(func.count()).where(
                    Video.provider == provider,
                    or_(
                        Video.status.in_(AT_PROVIDER),
                        and_(live, Video.status == VideoJobStatus.PENDING),
                    ),
                )
            )
            room = min(slots - len(ids), provider_limit - (held_at_provider or 0))
            if room > 0:
                ids += [
                    video_id
                    for video_id, _ in await _lockable(
                        session,
                        and_(
                            Video.status == VideoJobStatus.PENDING,
                            or_(Video.lease_expires_at.is_(None), ~live),
                            due,
                        ),
                        Video.created_at.asc(),
                        room,
                    )
                ]
            if not ids:
                return []
            await session.execute(
                update(Video)
                .where(Video.id.in_(ids))
                .values(lease_owner=self.owner, lease_expires_at=func.now() + self._lease)
            )
            rows = await session.execute(
                select(Video, Lesson.title)
                .join(Lesson, Lesson.id == Video.lesson_id)
                .where(Video.id.in_(ids))
            )
            claimed = [
                ClaimedVideo(
                    video.id,
                    video.lesson_id,
                    title,
                    video.script,
                    video.status,
                    video.attempts,
                    video.provider_video_id,
                    dict(video.trace_context or {}),
                )
                for video, title in rows.all()
            ]
        self.held.update(video.id for video in claimed)
        return claimed

    async def renew(self) -> set[uuid.UUID]:
        """Extend the leases of every video we hold; returns those another worker took over."""
        held = list(self.held)
        if not held:
            return set()
        async with transaction(self._sessions) as session:
            result = await session.execute(
                update(Video)
                .where(Video.id.in_(held), Video.lease_owner == self.owner)
                .values(lease_expires_at=func.now() + self._lease)
                .returning(Video.id)
            )
            kept = set(result.scalars().all())
        # A video released while the renewal ran is no longer held, and not lost either.
        lost = (set(held) - kept) & self.held
        self.held -= lost
        return lost

    async def due(self, ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
        """Which of our videos waiting at the provider should be polled now (on schedule, or
        sooner because a webhook said the provider is done)."""
        if not ids:
            return []
        async with self._sessions() as session:
            result = await session.execute(
                select(Video.id).where(
                    Video.id.in_(ids),
                    Video.lease_owner == self.owner,
                    Video.next_poll_at <= func.now(),
                )
            )
            return list(result.scalars().all())

    async def submitted(
        self, video_id: uuid.UUID, *, provider: str, provider_video_id: str, poll_in: float
    ) -> None:
        await self._write(
            video_id,
            status=VideoJobStatus.SUBMITTED,
            provider=provider,
            provider_video_id=provider_video_id,
            next_poll_at=_after(poll_in),
            lesson={"video_status": VideoStatus.PROCESSING, "video_error": None},
        )

    async def processing(self, video_id: uuid.UUID, *, poll_in: float) -> None:
        await self._write(video_id, status=VideoJobStatus.PROCESSING, next_poll_at=_after(poll_in))

    async def downloading(self, video_id: uuid.UUID) -> None:
        await self._write(video_id, status=VideoJobStatus.DOWNLOADING, next_poll_at=None)

    async def completed(
        self,
        video_id: uuid.UUID,
        stored: StoredObject,
        *,
        duration_seconds: int | None,
        video_url: str,
    ) -> None:
        await self._write(
            video_id,
            release=True,
            status=VideoJobStatus.COMPLETED,
            storage_key=stored.key,
            size_bytes=stored.size_bytes,
            sha256=stored.sha256,
            duration_seconds=duration_seconds,
            error=None,
            next_poll_at=None,
            lesson={
                "video_status": VideoStatus.READY,
                "video_url": video_url,
                "video_duration_seconds": duration_seconds,
                "video_error": None,
            },
        )

    async def retry(
        self, video_id: uuid.UUID, *, attempts: int, error: str, retry_in: float
    ) -> None:
        """A failed attempt with attempts left: submit again later, as a new video."""
        await self._write(
            video_id,
            release=True,
            status=VideoJobStatus.PENDING,
            attempts=attempts,
            error=error,
            provider_video_id=None,
            next_poll_at=_after(retry_in),
            lesson={"video_status": VideoStatus.PENDING},
        )

    async def retry_download(
        self, video_id: uuid.UUID, *, attempts: int, error: str, poll_in: float
    ) -> None:
        """The provider's video is fine but the download failed: fetch a fresh link later."""
        await self._write(
            video_id,
            status=VideoJobStatus.PROCESSING,
            attempts=attempts,
            error=error,
            next_poll_at=_after(poll_in),
        )

    async def failed(self, video_id: uuid.UUID, *, attempts: int, error: str) -> None:
        """Out of attempts: the lesson stays usable, without a video."""
        await self._write(
            video_id,
            release=True,
            status=VideoJobStatus.FAILED,
            attempts=attempts,
            error=error,
            next_poll_at=None,
            lesson={"video_status": VideoStatus.FAILED, "video_error": error},
        )

    async def release(self, video_id: uuid.UUID, *, retry_in: float | None = None) -> None:
        """Give the video back for any worker to take: now, or after ``retry_in`` seconds."""
        values: dict[str, Any] = {} if retry_in is None else {"next_poll_at": _after(retry_in)}
        await self._write(video_id, release=True, **values)

    async def release_quietly(self, video_id: uuid.UUID, *, retry_in: float | None = None) -> None:
        """``release`` for a video this worker gives up on, which must not raise: a lease
        already lost is fine, and one that cannot be released is left to run out."""
        try:
            await self.release(video_id, retry_in=retry_in)
        except LeaseLost:
            pass
        except Exception as exc:
            # No longer renewed: its lease runs out and any replica takes it over.
            self.held.discard(video_id)
            logger.warning(
                "could not release video %s: %r", video_id, exc,
                exc_info=not is_connection_error(exc),
            )  # fmt: skip

    async def stats(self) -> VideoStats:
        async with self._sessions() as session:
            return await videos.stats(session)

    async def _write(
        self,
        video_id: uuid.UUID,
        *,
        release: bool = False,
        lesson: dict[str, Any] | None = None,
        **values: Any,
    ) -> None:
        if release:
            values |= {"lease_owner": None, "lease_expires_at": None}
        async with transaction(self._sessions) as session:
            lesson_id = await session.scalar(
                update(Video)
                .where(Video.id == video_id, Video.lease_owner == self.owner)
                .values(**values)
                .returning(Video.lesson_id)
            )
            if lesson_id is None:
                self.held.discard(video_id)
                raise LeaseLost(str(video_id))
            if lesson:
                await session.execute(update(Lesson).where(Lesson.id == lesson_id).values(**lesson))
        if release:
            self.held.discard(video_id)


async def _lockable(
    session: AsyncSession, condition: ColumnElement[bool], order: Any, limit: int
) -> list[tuple[uuid.UUID, VideoJobStatus]]:
    result = await session.execute(
        select(Video.id, Video.status)
        .where(condition)
        .order_by(order)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [(video_id, status) for video_id, status in result.all()]


def _after(seconds: float) -> ColumnElement[Any]:
    return func.now() + timedelta(seconds=seconds)
