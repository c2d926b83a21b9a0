"""The generator's gauges (momentum_domain.metric_names): ``generation.queue_depth`` (steps
queued or running across all jobs: the backlog the generator service scales on),
``notifications.outbox_pending``, the broker's ``generation.broker.queue_depth`` and
``generation.broker.dead_letters``, and ``generator.heartbeat``. Gauge callbacks cannot query
the database or Redis, so the sweeper's tick refreshes a snapshot that the callbacks read; the
job, cost and token counters are counted where the state changes
(momentum_domain.generation.dispatch and .costs)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from dramatiq.common import dq_name, xq_name
from opentelemetry import metrics
from opentelemetry.metrics import Meter
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_domain import metric_names
from momentum_domain.generation.service import generation
from momentum_domain.kit.heartbeat import HEARTBEAT_MAX_AGE_SECONDS
from momentum_domain.kit.queue import GENERATION_QUEUE
from momentum_domain.kit.telemetry import create_gauge
from momentum_domain.notifications.models import OutboxMessage, OutboxStatus

logger = logging.getLogger(__name__)


def broker_keys(namespace: str, queue: str = GENERATION_QUEUE) -> tuple[str, str, str]:
    """Where Dramatiq's RedisBroker keeps a queue (see its dispatch.lua): the list of ready
    message ids, the list of delayed ones, and the dead letters (a sorted set by time of
    death, trimmed after the broker's ``dead_message_ttl``)."""
    return f"{namespace}:{queue}", f"{namespace}:{dq_name(queue)}", f"{namespace}:{xq_name(queue)}"


class GenerationMetrics:
    def __init__(
        self,
        interval_seconds: float,
        broker_namespace: str = "dramatiq",
        meter: Meter | None = None,
    ) -> None:
        self._interval = interval_seconds
        self._broker_keys = broker_keys(broker_namespace)
        self.queue_depth: int | None = None
        self.outbox_pending: int | None = None
        self.broker_queue_depth: int | None = None
        self.dead_letters: int | None = None
        self._refreshed_at = float("-inf")
        self._ticked_at = float("-inf")
        meter = meter or metrics.get_meter("momentum.generator")
        gauges: list[tuple[metric_names.MetricSpec, Callable[[], float | None]]] = [
            (metric_names.GENERATION_QUEUE_DEPTH, lambda: self.queue_depth),
            (metric_names.NOTIFICATIONS_OUTBOX_PENDING, lambda: self.outbox_pending),
            (metric_names.GENERATION_BROKER_QUEUE_DEPTH, lambda: self.broker_queue_depth),
            (metric_names.GENERATION_BROKER_DEAD_LETTERS, lambda: self.dead_letters),
            (metric_names.GENERATOR_HEARTBEAT, self._alive),
        ]
        for spec, read in gauges:
            create_gauge(meter, spec, read)

    def _alive(self) -> float | None:
        # Nothing, rather than 0, once the sweeper stopped ticking: the alarm treats missing
        # data as breaching, which also covers a generator that is not running at all.
        return 1 if time.monotonic() - self._ticked_at < HEARTBEAT_MAX_AGE_SECONDS else None

    async def refresh_if_due(
        self, sessions: async_sessionmaker[AsyncSession], redis: Redis
    ) -> None:
        """Re-read the counts at most once an interval (every replica reports the same; the
        scaling policy and alarms take the maximum). Never raises: a failed read leaves its
        gauges empty, rather than stale, and must not stop the sweep that calls it."""
        self._ticked_at = time.monotonic()
        if time.monotonic() - self._refreshed_at < self._interval:
            return
        self._refreshed_at = time.monotonic()
        try:
            async with sessions() as session:
                self.queue_depth = await generation.backlog(session)
                self.outbox_pending = int(
                    await session.scalar(
                        select(func.count()).where(OutboxMessage.status == OutboxStatus.PENDING)
                    )
                    or 0
                )
        except Exception:
            self.queue_depth = self.outbox_pending = None
            logger.warning("reading the generation backlog failed", exc_info=True)
        ready, delayed, dead = self._broker_keys
        try:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.llen(ready)
                pipe.llen(delayed)
                pipe.zcard(dead)
                ready_count, delayed_count, dead_count = await pipe.execute()
            self.broker_queue_depth = int(ready_count) + int(delayed_count)
            self.dead_letters = int(dead_count)
        except Exception:
            self.broker_queue_depth = self.dead_letters = None
            logger.warning("reading the broker's queue failed", exc_info=True)
