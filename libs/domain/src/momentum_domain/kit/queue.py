"""The task queue: Dramatiq on Redis. Messages carry ids only, name their actor (so the API never
imports worker code), and carry the W3C trace context of whoever enqueued them. Enqueue only
after the transaction that wrote the rows has committed: a job never sees a rolled-back row."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from opentelemetry import propagate
from redis.exceptions import RedisError

from momentum_domain.config import Settings
from momentum_domain.kit.redis_clients import RETRIES, sync_redis

logger = logging.getLogger(__name__)

GENERATION_QUEUE = "generation"
RUN_GENERATION_STEP = "run_generation_step"


def create_broker(settings: Settings, *, retries: int = RETRIES) -> RedisBroker:
    # Heartbeats let another worker take over a dead worker's messages (after the timeout).
    # The client checks and re-establishes its connections: a Redis restart must not leave
    # the consumers and the enqueuers on dead sockets. ``retries``: fewer where a request waits.
    return RedisBroker(  # type: ignore[no-untyped-call]
        client=sync_redis(settings.redis_url or "redis://127.0.0.1:6379/0", retries=retries),
        heartbeat_timeout=60_000,
        dead_message_ttl=86_400_000,
    )


def trace_carrier() -> dict[str, str]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


class Enqueuer:
    def __init__(self, broker: RedisBroker) -> None:
        self._broker = broker

    def send(self, actor_name: str, *args: Any, queue: str = GENERATION_QUEUE) -> None:
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=queue,
            actor_name=actor_name,
            args=tuple(str(arg) for arg in args),
            kwargs={},
            options={"trace_context": trace_carrier()},
        )
        self._broker.enqueue(message)

    async def send_async(self, actor_name: str, *args: Any, queue: str = GENERATION_QUEUE) -> None:
        # The broker's client is synchronous; keep the event loop free while it talks to Redis.
        await asyncio.to_thread(self.send, actor_name, *args, queue=queue)

    async def send_after_commit(self, actor_name: str, *ids: Any) -> None:
        """Send one message per id for rows already committed QUEUED in PostgreSQL. Redis being
        unreachable is not the caller's failure: the rows stay QUEUED and the generator's
        sweeper sends them once Redis is back, so log one warning and carry on."""
        for sent, item in enumerate(ids):
            try:
                await self.send_async(actor_name, item)
            except RedisError as exc:
                logger.warning(
                    "queue unreachable, %d of %d %s messages left to the sweeper: %s",
                    len(ids) - sent, len(ids), actor_name, exc,
                )  # fmt: skip
                return
