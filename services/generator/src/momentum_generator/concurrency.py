"""A counting semaphore shared by every worker through Redis: the global cap on lessons being
generated at once, across all jobs and processes. Holders hold short leases that their worker
renews while it runs, so a worker that dies holding a slot gives it back within a lease."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# Drop expired holders, then take a slot if one is free. Atomic: no two workers see the same
# free slot.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
    return 1
end
return 0
"""


class RedisSemaphore:
    def __init__(self, redis: Redis, key: str, *, limit: int, lease_seconds: float) -> None:
        self._redis = redis
        self._key = key
        self._limit = limit
        self._lease = lease_seconds
        self._acquire = redis.register_script(_ACQUIRE)
        self._held: set[str] = set()

    @asynccontextmanager
    async def slot(self, *, poll_seconds: float = 0.05) -> AsyncIterator[None]:
        holder = uuid.uuid4().hex
        while True:
            now = time.time()
            taken = await self._acquire(
                keys=[self._key], args=[now, now + self._lease, self._limit, holder]
            )
            if taken:
                break
            await asyncio.sleep(poll_seconds * (1 + random.random()))  # jitter: no stampede
        self._held.add(holder)
        try:
            yield
        finally:
            self._held.discard(holder)
            try:
                await self._redis.zrem(self._key, holder)
            except RedisError as exc:
                # The work inside is done and must not be lost to this; the lease expires.
                logger.warning("lesson slot not released, its lease will expire: %s", exc)

    async def renew(self) -> None:
        """Push back the leases of the slots this process holds (XX: a slot whose lease already
        ran out and was dropped is not taken again behind the limit's back)."""
        if held := list(self._held):
            expires = time.time() + self._lease
            await self._redis.zadd(self._key, dict.fromkeys(held, expires), xx=True)
