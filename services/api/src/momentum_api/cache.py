"""Cache-aside for hot public reads: in this process first, then in Redis, under one catalog
version for invalidation.

Every entry is kept with the catalog version it was computed under; an admin write replaces the
version (in Redis, after its transaction commits), so the next read anywhere recomputes. A read
costs one Redis round trip (the version) when this process has the entry, two when only Redis
has it. If Redis is unavailable the API serves from PostgreSQL (degraded, logged) and a breaker
keeps it from waiting on Redis for every request."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from momentum_api.lru import TtlCache
from momentum_domain.kit.resilience import CircuitBreaker

logger = logging.getLogger(__name__)

T = TypeVar("T")
LOCAL_ENTRIES = 2048


class ResponseCache:
    def __init__(self, redis: Redis, breaker: CircuitBreaker, *, namespace: str, ttl: int) -> None:
        self._redis = redis
        self._breaker = breaker
        self._namespace = namespace
        self._version_key = f"cache:{namespace}:version"
        self._ttl = ttl
        # key -> (version, value), expiring with the TTL
        self._local: TtlCache[tuple[bytes, Any]] = TtlCache(LOCAL_ENTRIES)

    async def fetch(self, key: str, produce: Callable[[], Awaitable[bytes]]) -> bytes:
        """A body shared by every API process through Redis, and kept in this one."""
        version = await self._version()
        if version is None:
            return await produce()
        body: bytes | None = self._local_get(key, version)
        if body is not None:
            return body
        entry_key = f"cache:{self._namespace}:{key}"
        try:
            entry = await self._redis.get(entry_key)
        except RedisError as exc:
            self._degraded(exc)
            return await produce()
        # The client does not decode responses, so values are bytes.
        if isinstance(entry, bytes):
            stored_version, _, stored = entry.partition(b"|")
            if stored_version == version:
                self._local_put(key, version, stored)
                return stored
        body = await produce()
        try:
            await self._redis.set(entry_key, version + b"|" + body, ex=self._ttl)
        except RedisError as exc:
            self._degraded(exc)
        self._local_put(key, version, body)
        return body

    async def fetch_local(self, key: str, produce: Callable[[], Awaitable[T]]) -> T | None:
        """A value kept in this process only (objects, not bytes), under the same version;
        None when Redis is unavailable (without the version nothing kept can be trusted, and
        the caller may have a cheaper way to answer than ``produce``)."""
        version = await self._version()
        if version is None:
            return None
        value: T | None = self._local_get(key, version)
        if value is None:
            value = await produce()
            self._local_put(key, version, value)
        return value

    async def invalidate(self) -> None:
        try:
            await self._redis.set(self._version_key, _new_version())
            self._breaker.record_success()
        except RedisError as exc:
            # Entries expire within the TTL anyway; say loudly that they may be stale until then.
            logger.error("cache %s not invalidated (Redis unavailable): %s", self._namespace, exc)
            self._breaker.record_failure()

    async def _version(self) -> bytes | None:
        """The current version, or None when Redis is unavailable."""
        if self._breaker.is_open:
            return None
        try:
            version = await self._redis.get(self._version_key)
            if version is None:
                # First use, or Redis lost its data: a version never seen before, so nothing
                # cached under an earlier one (in any process) can match.
                fresh = _new_version()
                if await self._redis.set(self._version_key, fresh, nx=True):
                    version = fresh
                else:
                    version = await self._redis.get(self._version_key)
            self._breaker.record_success()
        except RedisError as exc:
            self._degraded(exc)
            return None
        return version if isinstance(version, bytes) else None

    def _local_get(self, key: str, version: bytes) -> Any:
        entry = self._local.get(key)
        return entry[1] if entry is not None and entry[0] == version else None

    def _local_put(self, key: str, version: bytes, value: Any) -> None:
        self._local.put(key, (version, value), self._ttl)

    def _degraded(self, exc: Exception) -> None:
        self._breaker.record_failure()
        logger.warning("cache %s degraded, serving from PostgreSQL: %s", self._namespace, exc)


def _new_version() -> bytes:
    """Versions are random, not a counter: a counter restarts when Redis loses its data, and
    entries kept in a process under the old numbers would match again."""
    return uuid.uuid4().hex.encode()
