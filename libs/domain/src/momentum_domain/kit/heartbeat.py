"""Worker heartbeats in Redis, so the API can say which workers are alive and at which version.

Each worker process beats on the tick that already keeps its container health file fresh: one
sorted set per worker kind, a member per (worker, version) scored by the time of its last beat.
The API reads the members beaten within ``HEARTBEAT_MAX_AGE_SECONDS``; the deploy's smoke test
reads them through ``/health/workers`` and needs every kind alive at the version just deployed,
without AWS credentials. One key per command: safe on any Redis topology.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter

from redis.asyncio import Redis

logger = logging.getLogger(__name__)

WORKER_KINDS = ("generator", "video-worker")
# The same freshness the container health checks allow.
HEARTBEAT_MAX_AGE_SECONDS = 60.0
# A worker beats at most this often however fast its loop ticks.
BEAT_INTERVAL_SECONDS = 5.0
BEAT_TIMEOUT_SECONDS = 2.0


def heartbeat_key(kind: str) -> str:
    return f"heartbeats:{kind}"


class Heartbeat:
    """One worker process's heartbeat. ``beat`` never raises: a missed beat must not stop work."""

    def __init__(
        self,
        redis: Redis,
        kind: str,
        *,
        worker_id: str,
        version: str,
        interval_seconds: float = BEAT_INTERVAL_SECONDS,
    ) -> None:
        if kind not in WORKER_KINDS:
            raise ValueError(f"unknown worker kind {kind!r}; expected one of {WORKER_KINDS}")
        self._redis = redis
        self._key = heartbeat_key(kind)
        self._member = json.dumps({"worker": worker_id, "version": version}, sort_keys=True)
        self._interval = interval_seconds
        self._last = float("-inf")
        self._failing = False

    async def beat(self) -> bool:
        """Record this worker as alive now (if the last beat is older than the interval)."""
        now = time.time()
        if now - self._last < self._interval:
            return False
        try:
            await asyncio.wait_for(self._write(now), BEAT_TIMEOUT_SECONDS)
        except Exception as exc:
            # One line per outage, not one per tick.
            if not self._failing:
                logger.warning("heartbeat to Redis failed: %r", exc)
            self._failing = True
            return False
        if self._failing:
            logger.info("heartbeat to Redis works again")
        self._failing = False
        self._last = now
        return True

    async def _write(self, now: float) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self._key, {self._member: now})
            # Workers that stopped beating (replaced tasks) are dropped by the next beat.
            pipe.zremrangebyscore(self._key, "-inf", now - HEARTBEAT_MAX_AGE_SECONDS)
            # A kind with no workers left does not keep its key for ever.
            pipe.expire(self._key, int(HEARTBEAT_MAX_AGE_SECONDS * 10))
            await pipe.execute()


async def live_workers(
    redis: Redis, *, max_age_seconds: float = HEARTBEAT_MAX_AGE_SECONDS
) -> dict[str, dict[str, int]]:
    """Per worker kind, how many workers beat within ``max_age_seconds``, by version."""
    since = time.time() - max_age_seconds
    async with redis.pipeline(transaction=False) as pipe:
        for kind in WORKER_KINDS:
            pipe.zrangebyscore(heartbeat_key(kind), since, "+inf")
        members_by_kind = await pipe.execute()
    report: dict[str, dict[str, int]] = {}
    for kind, members in zip(WORKER_KINDS, members_by_kind, strict=True):
        versions: Counter[str] = Counter()
        for member in members:
            try:
                versions[str(json.loads(member)["version"])] += 1
            except (ValueError, KeyError, TypeError):
                continue  # not ours: ignore rather than fail the report
        report[kind] = dict(sorted(versions.items()))
    return report
