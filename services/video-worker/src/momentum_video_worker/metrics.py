"""Video counts as OpenTelemetry gauges (``videos.pending``, ``videos.in_flight``,
``videos.completed``, ``videos.failed``, ``videos.oldest_pending_age_seconds``, defined in
momentum_domain.metric_names; the alarms and the autoscaling in infra/ use the pending ones).
Gauge callbacks cannot query the database, so the worker loop refreshes a snapshot that they
read; ``video_worker.heartbeat`` reports 1 while that loop ticks."""

from __future__ import annotations

import time
from collections.abc import Callable

from opentelemetry import metrics
from opentelemetry.metrics import Meter

from momentum_domain import metric_names
from momentum_domain.kit.heartbeat import HEARTBEAT_MAX_AGE_SECONDS
from momentum_domain.kit.telemetry import create_gauge
from momentum_domain.metric_names import MetricSpec
from momentum_domain.videos.service import VideoStats
from momentum_video_worker.repository import VideoRepository


class VideoMetrics:
    def __init__(self, repository: VideoRepository, meter: Meter | None = None) -> None:
        self._repository = repository
        self.counts: VideoStats | None = None
        self._refreshed_at = float("-inf")
        self._ticked_at = float("-inf")
        meter = meter or metrics.get_meter("momentum.video_worker")
        gauges: list[tuple[MetricSpec, Callable[[VideoStats], float | None]]] = [
            (metric_names.VIDEOS_PENDING, lambda c: c.pending),
            (metric_names.VIDEOS_IN_FLIGHT, lambda c: c.in_flight),
            (metric_names.VIDEOS_COMPLETED, lambda c: c.completed),
            (metric_names.VIDEOS_FAILED, lambda c: c.failed),
            (metric_names.VIDEOS_OLDEST_PENDING_AGE, lambda c: c.oldest_pending_age_seconds),
        ]
        for spec, read in gauges:
            create_gauge(meter, spec, self._reader(read))
        create_gauge(meter, metric_names.VIDEO_WORKER_HEARTBEAT, self._alive)

    def _alive(self) -> float | None:
        # Nothing, rather than 0, once the loop stopped ticking: the alarm treats missing data
        # as breaching, which also covers a video worker that is not running at all.
        return 1 if time.monotonic() - self._ticked_at < HEARTBEAT_MAX_AGE_SECONDS else None

    async def refresh_if_due(self, interval_seconds: float) -> None:
        self._ticked_at = time.monotonic()
        if time.monotonic() - self._refreshed_at >= interval_seconds:
            self.counts = await self._repository.stats()
            self._refreshed_at = time.monotonic()

    def _reader(self, read: Callable[[VideoStats], float | None]) -> Callable[[], float | None]:
        return lambda: read(self.counts) if self.counts is not None else None
