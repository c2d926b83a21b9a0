"""The video worker: takes lesson video requests from PostgreSQL and drives each one to a stored
MP4 (or to FAILED with a reason), safely alongside other replicas.

One loop ticks (every second, or a quarter of the poll interval if that is shorter): it writes the
health file, wakes the videos whose next poll is due, and leases more work while this process has
free slots. Each leased video gets a task that runs its life: submit -> poll on a backoff
schedule -> stream the MP4 into storage. A background loop renews the leases of every video the
process holds every few seconds; a replica that dies simply stops renewing, and its videos (and
their places at the provider) are taken over by another replica once their short leases run out:
a video at the provider is polled under its existing provider id, never submitted again. A
graceful stop (SIGTERM) hands waiting videos back at once, due for a poll.

Limits: a process works on at most ``heygen_max_concurrent_videos`` videos at a time (a
semaphore), and no more than that many are at the provider across all replicas (claims count,
under an advisory lock, the videos at the provider or being submitted under live leases: a dead
worker's places free up with its leases).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.metrics import Meter
from opentelemetry.trace import Span
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_domain.config import Settings
from momentum_domain.kit.heartbeat import Heartbeat
from momentum_domain.kit.storage import ObjectStorage, media_path
from momentum_domain.videos.models import VideoJobStatus
from momentum_domain.videos.service import video_key
from momentum_video_worker.health import write_health
from momentum_video_worker.metrics import VideoMetrics
from momentum_video_worker.outages import OutageLog, is_connection_error
from momentum_video_worker.providers import (
    ProviderError,
    ProviderStatus,
    RejectedByProvider,
    RenderLost,
    TransientProviderError,
    VideoProvider,
    VideoState,
)
from momentum_video_worker.repository import ClaimedVideo, LeaseLost, VideoRepository
from momentum_video_worker.schedule import Schedule
from momentum_video_worker.slots import Slot, take_free

logger = logging.getLogger(__name__)
tracer = trace.get_tracer("momentum.video_worker")

# ECS gives a stopping task 120 s before SIGKILL; leave time to release what is left.
SHUTDOWN_GRACE_SECONDS = 90.0
PROCESSING_TIMEOUT_SECONDS = 2 * 3600.0
METRICS_INTERVAL_SECONDS = 15.0


def default_worker_id() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class VideoWorker:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        storage: ObjectStorage,
        provider: VideoProvider,
        *,
        worker_id: str | None = None,
        tick_seconds: float | None = None,
        health_file: Path | None = None,
        heartbeat: Heartbeat | None = None,
        processing_timeout_seconds: float = PROCESSING_TIMEOUT_SECONDS,
        shutdown_grace_seconds: float = SHUTDOWN_GRACE_SECONDS,
        meter: Meter | None = None,
    ) -> None:
        self.id = worker_id or default_worker_id()
        self._storage = storage
        self._provider = provider
        self._repository = VideoRepository(
            sessions, owner=self.id, lease_seconds=settings.video_lease_seconds
        )
        self._limit = settings.heygen_max_concurrent_videos
        self._poll_interval = settings.video_poll_interval_seconds
        self._schedule = Schedule(self._poll_interval)
        self._max_attempts = settings.video_max_attempts
        # Several renewals fit in one lease, so a slow one or two do not lose it.
        self._renew_every = min(
            settings.video_lease_renew_seconds, settings.video_lease_seconds / 3
        )
        self._database = OutageLog("PostgreSQL")
        # The tick decides how late a due poll can start: keep it well under the poll interval.
        self._tick = tick_seconds or min(1.0, self._poll_interval / 4)
        self._health_file = health_file
        self._heartbeat = heartbeat
        self._processing_timeout = processing_timeout_seconds
        self._grace = shutdown_grace_seconds
        self._slots = asyncio.Semaphore(self._limit)
        self._metrics = VideoMetrics(self._repository, meter)
        self._tasks: dict[uuid.UUID, asyncio.Task[None]] = {}
        # Per video: set when its next poll is due (or on shutdown); ``_waiting`` holds the
        # videos currently asleep on theirs.
        self._wake: dict[uuid.UUID, asyncio.Event] = {}
        self._waiting: set[uuid.UUID] = set()
        self._lost: set[uuid.UUID] = set()
        self._stopping = asyncio.Event()
        self._draining = False

    @property
    def held(self) -> set[uuid.UUID]:
        """The videos this worker holds leases on."""
        return set(self._repository.held)

    def stop(self) -> None:
        """Begin a graceful shutdown (SIGTERM): stop claiming, let active steps finish, hand
        waiting videos back at once."""
        self._stopping.set()
        for event in self._wake.values():
            event.set()

    async def run(self) -> None:
        """Work until ``stop()``, then drain. Cancelling this coroutine is a crash: tasks stop
        where they are and their leases are left to expire."""
        # Nothing is held at start: what a dead renderer left on this disk can go.
        await self._provider.remove_orphans()
        renewer = asyncio.create_task(self._renew_leases(), name="video-lease-renewal")
        try:
            while not self._stopping.is_set():
                pause = self._tick
                try:
                    await self._tick_once()
                except Exception as exc:
                    pause = self._database.failed(exc)
                else:
                    self._database.succeeded()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), pause)
            await self._drain()
        finally:
            renewer.cancel()
            tasks = list(self._tasks.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(renewer, *tasks, return_exceptions=True)

    async def _tick_once(self) -> None:
        for video_id in await self._repository.due(list(self._waiting)):
            if (event := self._wake.get(video_id)) is not None:
                event.set()
        slots = await take_free(self._slots)
        try:
            claimed = await self._repository.claim(
                provider=self._provider.name, slots=len(slots), provider_limit=self._limit
            )
            for video in claimed:
                self._start(video, slots.pop())
        finally:
            for slot in slots:
                slot.release()
        await self._metrics.refresh_if_due(METRICS_INTERVAL_SECONDS)
        if self._health_file is not None:
            write_health(self._health_file, worker_id=self.id, held=len(self._tasks))
        if self._heartbeat is not None:
            await self._heartbeat.beat()

    def _start(self, video: ClaimedVideo, slot: Slot) -> None:
        self._wake[video.id] = event = asyncio.Event()
        if video.status in (VideoJobStatus.SUBMITTED, VideoJobStatus.PROCESSING):
            event.set()  # taken over because its poll was due
        self._tasks[video.id] = asyncio.create_task(
            self._drive(video, slot), name=f"video-{video.id}"
        )

    async def _drain(self) -> None:
        if not self._tasks:
            return
        logger.info("stopping: waiting up to %.0f s for %d videos", self._grace, len(self._tasks))
        _, unfinished = await asyncio.wait(list(self._tasks.values()), timeout=self._grace)
        # Out of time: cancel what is left; each task hands its video back as it unwinds.
        self._draining = True
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self._renew_every)
            if not self._repository.held:
                continue  # nothing to renew: no news about the database either
            try:
                lost = await self._repository.renew()
            except Exception as exc:
                self._database.failed(exc)  # renewals keep their pace: leases are short
                continue
            self._database.succeeded()
            for video_id in lost:
                if (task := self._tasks.get(video_id)) is not None:
                    logger.warning("lost the lease on video %s; another worker has it", video_id)
                    self._lost.add(video_id)
                    task.cancel()

    # One video's life -----------------------------------------------------------------------

    async def _drive(self, video: ClaimedVideo, slot: Slot) -> None:
        parent = propagate.extract(video.trace_context)
        status: VideoJobStatus | None = video.status
        finished: ProviderStatus | None = None
        started = time.monotonic()
        try:
            while status is not None:
                if status is VideoJobStatus.PENDING:
                    with self._span("video.submit", parent, video) as span:
                        status = await self._submit(video, span)
                    started = time.monotonic()
                elif status in (VideoJobStatus.SUBMITTED, VideoJobStatus.PROCESSING):
                    if not await self._wait_until_due(video):
                        # Stopping: due now, so another replica polls it at once.
                        await self._repository.release(video.id, retry_in=0)
                        return
                    with self._span("video.poll", parent, video) as span:
                        status, finished = await self._poll(video, span, started)
                elif status is VideoJobStatus.DOWNLOADING:
                    with self._span("video.download", parent, video) as span:
                        status = await self._download(video, span, finished)
                else:
                    return
        except LeaseLost:
            logger.warning("video %s was taken over by another worker", video.id)
        except asyncio.CancelledError:
            if self._draining and video.id not in self._lost:
                await asyncio.shield(self._repository.release_quietly(video.id))
            raise
        except Exception as exc:
            if is_connection_error(exc):
                logger.warning("video %s: paused, a connection failed: %r", video.id, exc)
            else:
                logger.exception("video %s: unexpected error", video.id)
            await self._repository.release_quietly(video.id, retry_in=self._poll_interval)
        finally:
            slot.release()
            self._tasks.pop(video.id, None)
            self._wake.pop(video.id, None)
            self._lost.discard(video.id)

    async def _submit(self, video: ClaimedVideo, span: Span) -> VideoJobStatus | None:
        # Keyed by attempt: a replica that takes over a crashed submission replays the same
        # request, and the provider answers with the video it already started.
        key = f"momentum-video-{video.id}-{video.attempts}"
        try:
            provider_video_id = await self._provider.submit(
                video.script, video.title, idempotency_key=key, callback_id=str(video.id)
            )
        except TransientProviderError as exc:
            span.set_attribute("video.outcome", "rescheduled")
            logger.info("video %s: provider busy, submitting later: %s", video.id, exc)
            await self._repository.release(video.id, retry_in=self._schedule.delay_after(exc))
            return None
        except RejectedByProvider as exc:
            await self._fail(video, str(exc))
            return None
        span.set_attribute("video.provider_video_id", provider_video_id)
        video.provider_video_id = provider_video_id
        video.polls = 0
        await self._repository.submitted(
            video.id,
            provider=self._provider.name,
            provider_video_id=provider_video_id,
            poll_in=self._schedule.next_poll_delay(video),
        )
        return VideoJobStatus.SUBMITTED

    async def _wait_until_due(self, video: ClaimedVideo) -> bool:
        """Sleep until the tick finds this video's poll due; False when shutting down."""
        event = self._wake[video.id]
        self._waiting.add(video.id)
        try:
            await event.wait()
        finally:
            self._waiting.discard(video.id)
        event.clear()
        return not self._stopping.is_set()

    async def _poll(
        self, video: ClaimedVideo, span: Span, started: float
    ) -> tuple[VideoJobStatus | None, ProviderStatus | None]:
        assert video.provider_video_id is not None
        try:
            current = await self._provider.status(video.provider_video_id)
        except TransientProviderError as exc:
            await self._repository.processing(video.id, poll_in=self._schedule.delay_after(exc))
            return VideoJobStatus.PROCESSING, None
        except RejectedByProvider as exc:
            await self._fail(video, str(exc))
            return None, None
        except RenderLost as exc:
            logger.info("video %s: %s; rendering it again", video.id, exc)
            return VideoJobStatus.PENDING, None
        span.set_attribute("video.provider_state", current.state.value)
        if current.state is VideoState.COMPLETED and current.video_url:
            await self._repository.downloading(video.id)
            return VideoJobStatus.DOWNLOADING, current
        if current.state is VideoState.FAILED:
            reason = current.error or "the provider could not render the video"
            await self._fail(video, f"Provider failed: {reason}")
            return None, None
        if time.monotonic() - started > self._processing_timeout:
            await self._fail(video, "Timed out waiting for the provider")
            return None, None
        await self._repository.processing(video.id, poll_in=self._schedule.next_poll_delay(video))
        return VideoJobStatus.PROCESSING, None

    async def _download(
        self, video: ClaimedVideo, span: Span, finished: ProviderStatus | None
    ) -> VideoJobStatus | None:
        assert video.provider_video_id is not None
        try:
            # A video taken over mid-download needs a fresh (presigned) link first.
            finished = finished or await self._provider.status(video.provider_video_id)
            if finished.video_url is None:
                raise TransientProviderError("the provider has no download link yet")
            stored = await self._storage.put_stream(
                video_key(video.lesson_id, video.provider_video_id),
                self._provider.download(video.provider_video_id, finished.video_url),
                "video/mp4",
            )
        except RenderLost as exc:
            logger.info("video %s: %s; rendering it again", video.id, exc)
            return VideoJobStatus.PENDING
        except ProviderError as exc:
            attempts = video.attempts + 1
            if attempts >= self._max_attempts:
                await self._fail(video, f"Download failed: {exc}")
                return None
            video.attempts = attempts
            await self._repository.retry_download(
                video.id, attempts=attempts, error=f"Download failed: {exc}",
                poll_in=self._schedule.retry_delay(attempts),
            )  # fmt: skip
            return VideoJobStatus.PROCESSING
        duration = round(finished.duration_seconds) if finished.duration_seconds else None
        span.set_attributes({"video.size_bytes": stored.size_bytes, "video.sha256": stored.sha256})
        await self._repository.completed(
            video.id,
            stored,
            duration_seconds=duration,
            video_url=media_path(stored.key),
        )
        try:
            await self._provider.release(video.provider_video_id)
        except Exception:
            logger.warning("could not release provider copy of %s", video.id, exc_info=True)
        return None

    async def _fail(self, video: ClaimedVideo, reason: str) -> None:
        """Count a failed attempt: submit again later, or give up with the reason."""
        attempts = video.attempts + 1
        logger.warning("video %s attempt %d failed: %s", video.id, attempts, reason)
        if attempts >= self._max_attempts:
            await self._repository.failed(video.id, attempts=attempts, error=reason)
        else:
            await self._repository.retry(
                video.id,
                attempts=attempts,
                error=reason,
                retry_in=self._schedule.retry_delay(attempts),
            )

    @contextlib.contextmanager
    def _span(self, name: str, parent: Context, video: ClaimedVideo) -> Iterator[Span]:
        # The generation job's trace context, stored with the request, is the parent: one
        # trace shows a course from the admin's click to its last stored video.
        with tracer.start_as_current_span(
            name,
            context=parent,
            attributes={
                "video.id": str(video.id),
                "lesson.id": str(video.lesson_id),
                "video.provider": self._provider.name,
                "video.attempt": video.attempts + 1,
                "worker.id": self.id,
            },
        ) as span:
            yield span
