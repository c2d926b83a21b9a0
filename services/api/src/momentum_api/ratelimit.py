"""Counters in Redis for rate limits. When Redis is unreachable the limits are not enforced
(logged): availability of the API matters more than a limiter."""

from __future__ import annotations

import logging

from momentum_domain.errors import TooManyRequests
from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


class FailureLimiter:
    """Blocks a key (an account, an IP) after ``max_failures`` failures within ``window``
    seconds, until the window expires."""

    def __init__(self, redis: Redis, *, prefix: str, max_failures: int, window: int) -> None:
        self._redis = redis
        self._prefix = prefix
        self._max = max_failures
        self._window = window

    def _key(self, key: str) -> str:
        return f"ratelimit:{self._prefix}:{key}"

    async def check(self, *keys: str) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.get(self._key(key))
                    pipe.ttl(self._key(key))
                results = await pipe.execute()
        except RedisError as exc:
            logger.warning("rate limiter unavailable, not enforcing: %s", exc)
            return
        for count, ttl in zip(results[::2], results[1::2], strict=True):
            if count is not None and int(count) >= self._max:
                raise TooManyRequests(
                    "Too many failed attempts; try again later.", retry_after=max(int(ttl), 1)
                )

    async def record_failure(self, *keys: str) -> None:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for key in keys:
                    # The window starts at the first failure; INCR keeps the expiry.
                    pipe.set(self._key(key), 0, ex=self._window, nx=True)
                    pipe.incr(self._key(key))
                await pipe.execute()
        except RedisError as exc:
            logger.warning("rate limiter unavailable, failure not counted: %s", exc)

    async def reset(self, *keys: str) -> None:
        try:
            await self._redis.delete(*(self._key(k) for k in keys))
        except RedisError as exc:
            logger.warning("rate limiter unavailable, counters not reset: %s", exc)
