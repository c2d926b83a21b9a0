"""Video counts as OpenTelemetry gauges (``videos.pending``, ``videos.in_flight``,
``videos.completed``, ``videos.failed``, ``videos.oldest_pending_age_seconds``; the alarms and the
autoscaling in infra/ use the pending ones). Gauge callbacks cannot query the database, so the
worker loop refreshes a snapshot that they read."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Meter, Observation

from momentum_video_worker.repository import VideoCounts, VideoRepository


class VideoMetrics:
    def __init__(self, repository: VideoRepository, meter: Meter | None = None) -> None:
        self._repository = repository
        self.counts: VideoCounts | None = None
        self._refreshed_at = float("-inf")
        meter = meter or metrics.get_meter("momentum.video_worker")
        gauges: dict[str, tuple[str, Callable[[VideoCounts], float | None]]] = {
            "videos.pending": ("Videos waiting to be submitted", lambda c: c.pending),
            "videos.in_flight": ("Videos at the provider or downloading", lambda c: c.in_flight),
            "videos.completed": ("Videos stored", lambda c: c.completed),
            "videos.failed": ("Videos that ran out of attempts", lambda c: c.failed),
            "videos.oldest_pending_age_seconds": (
                "Age of the oldest pending video",
                lambda c: c.oldest_pending_age_seconds,
            ),
        }
        for name, (description, read) in gauges.items():
            meter.create_observable_gauge(
                name, callbacks=[self._observer(read)], description=description
            )

    async def refresh_if_due(self, interval_seconds: float) -> None:
        if time.monotonic() - self._refreshed_at >= interval_seconds:
            self.counts = await self._repository.counts()
            self._refreshed_at = time.monotonic()

    def _observer(
        self, read: Callable[[VideoCounts], float | None]
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_: CallbackOptions) -> Iterable[Observation]:
            value = read(self.counts) if self.counts is not None else None
            return [] if value is None else [Observation(value)]

        return observe
