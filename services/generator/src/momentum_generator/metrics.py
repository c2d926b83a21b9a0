"""The generator's gauge ``generation.queue_depth`` (steps queued or running across all jobs:
the backlog the generator service scales on). Gauge callbacks cannot query the database, so the
sweeper's tick refreshes a snapshot that the callback reads; the job and cost counters are
counted where the state changes (momentum_domain.generation.service)."""

from __future__ import annotations

import logging
import time

from opentelemetry import metrics
from opentelemetry.metrics import Meter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_domain import metric_names
from momentum_domain.generation.service import generation
from momentum_domain.telemetry import create_gauge

logger = logging.getLogger(__name__)


class GenerationMetrics:
    def __init__(self, interval_seconds: float, meter: Meter | None = None) -> None:
        self._interval = interval_seconds
        self.queue_depth: int | None = None
        self._refreshed_at = float("-inf")
        meter = meter or metrics.get_meter("momentum.generator")
        create_gauge(meter, metric_names.GENERATION_QUEUE_DEPTH, lambda: self.queue_depth)

    async def refresh_if_due(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Re-read the backlog at most once an interval (every replica reports the same count;
        the scaling policy takes the maximum). Never raises: a failed read leaves the gauge
        empty, rather than stale, and must not stop the sweep that calls it."""
        if time.monotonic() - self._refreshed_at < self._interval:
            return
        self._refreshed_at = time.monotonic()
        try:
            async with sessions() as session:
                self.queue_depth = await generation.backlog(session)
        except Exception:
            self.queue_depth = None
            logger.warning("reading the generation backlog failed", exc_info=True)
