"""Cache-aside for hot public reads, in Redis, with one version number for invalidation.

Every cached body is stored with the catalog version it was computed under; an admin write
bumps the version after its transaction commits, so the next read recomputes. Reads cost one
round trip (MGET of the version and the entry). If Redis is unavailable the API serves from
PostgreSQL (degraded, logged) and a breaker keeps it from waiting on Redis for every request."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from momentum_domain.resilience import CircuitBreaker

logger = logging.getLogger(__name__)


class ResponseCache:
    def __init__(self, redis: Redis, breaker: CircuitBreaker, *, namespace: str, ttl: int) -> None:
        self._redis = redis
        self._breaker = breaker
        self._namespace = namespace
        self._version_key = f"cache:{namespace}:version"
        self._ttl = ttl

    async def fetch(self, key: str, produce: Callable[[], Awaitable[bytes]]) -> bytes:
        if self._breaker.is_open:
            return await produce()
        entry_key = f"cache:{self._namespace}:{key}"
        try:
            stored = await self._redis.mget(self._version_key, entry_key)
            self._breaker.record_success()
        except RedisError as exc:
            self._degraded(exc)
            return await produce()
        # The client does not decode responses, so values are bytes.
        version = stored[0] if isinstance(stored[0], bytes) else b"0"
        entry = stored[1]
        if isinstance(entry, bytes):
            stored_version, _, body = entry.partition(b"|")
            if stored_version == version:
                return bytes(body)
        body = await produce()
        try:
            await self._redis.set(entry_key, version + b"|" + body, ex=self._ttl)
        except RedisError as exc:
            self._degraded(exc)
        return body

    async def invalidate(self) -> None:
        try:
            await self._redis.incr(self._version_key)
            self._breaker.record_success()
        except RedisError as exc:
            # Entries expire within the TTL anyway; say loudly that they may be stale until then.
            logger.error("cache %s not invalidated (Redis unavailable): %s", self._namespace, exc)
            self._breaker.record_failure()

    def _degraded(self, exc: Exception) -> None:
        self._breaker.record_failure()
        logger.warning("cache %s degraded, serving from PostgreSQL: %s", self._namespace, exc)
