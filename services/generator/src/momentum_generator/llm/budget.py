"""A tokens-per-minute budget shared by every worker through Redis.

Bedrock's quotas are per-minute token quotas, and a call reserves its input plus ``max_tokens``
when it starts; the unused part comes back when it ends. The budget does the same so that the
workers together stay under the quota instead of discovering it through throttling.

Fixed windows (one minute by default) keyed on Redis's clock, so every worker agrees on them. One
hash holds the current window and its usage; a Lua script makes check-and-reserve atomic, and
touching a single declared key keeps it valid on a Redis cluster.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from momentum_generator.llm.base import LlmRejected, LlmThrottled

logger = logging.getLogger(__name__)

# KEYS[1]: the budget hash. ARGV: limit, tokens, window length in ms.
# Returns {1, window, 0} when reserved, {0, window, ms until the next window} when not.
_RESERVE = """
local limit = tonumber(ARGV[1])
local tokens = tonumber(ARGV[2])
local window_ms = tonumber(ARGV[3])
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local window = math.floor(now_ms / window_ms)
local current = tonumber(redis.call('HGET', KEYS[1], 'window') or '-1')
local used = 0
if current == window then
  used = tonumber(redis.call('HGET', KEYS[1], 'used') or '0')
end
if used + tokens > limit then
  return {0, window, (window + 1) * window_ms - now_ms}
end
if current == window then
  redis.call('HINCRBY', KEYS[1], 'used', tokens)
else
  redis.call('HSET', KEYS[1], 'window', window, 'used', tokens)
end
redis.call('PEXPIRE', KEYS[1], window_ms * 2)
return {1, window, 0}
"""

# KEYS[1]: the budget hash. ARGV: window, delta (negative gives tokens back).
# Only the reservation's own window is adjusted: a new window starts from zero anyway.
_SETTLE = """
if redis.call('HGET', KEYS[1], 'window') ~= ARGV[1] then
  return 0
end
local used = redis.call('HINCRBY', KEYS[1], 'used', tonumber(ARGV[2]))
if used < 0 then
  redis.call('HSET', KEYS[1], 'used', 0)
end
return 1
"""

# KEYS[1]: the budget hash. ARGV: window length in ms. Returns the current window's usage.
_USED = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local window = math.floor(now_ms / tonumber(ARGV[1]))
if tonumber(redis.call('HGET', KEYS[1], 'window') or '-1') ~= window then
  return 0
end
return tonumber(redis.call('HGET', KEYS[1], 'used') or '0')
"""


@dataclass(frozen=True, slots=True)
class Reservation:
    """Tokens taken from one window. ``window`` is None when the budget was not enforced
    (Redis unreachable), and then releasing it does nothing."""

    tokens: int
    window: int | None
    waited_seconds: float = 0.0


class TokenBudget:
    def __init__(
        self,
        redis: Redis,
        *,
        key_prefix: str,
        tokens_per_minute: int,
        window_seconds: float = 60.0,
        max_wait_seconds: float = 120.0,
    ) -> None:
        """``tokens_per_minute`` is the limit per window; ``window_seconds`` is 60 except in
        tests. ``reserve`` gives up with :class:`LlmThrottled` after ``max_wait_seconds``."""
        if tokens_per_minute < 1:
            raise ValueError("tokens_per_minute must be positive")
        self._redis = redis
        self.key = f"{key_prefix}:tpm"
        self.limit = tokens_per_minute
        self._window_ms = max(int(window_seconds * 1000), 1)
        self._max_wait = max_wait_seconds
        self._reserve = redis.register_script(_RESERVE)
        self._settle = redis.register_script(_SETTLE)
        self._used = redis.register_script(_USED)

    async def reserve(self, tokens: int) -> Reservation:
        """Take ``tokens`` from the current window, waiting for later windows while it is
        exhausted."""
        tokens = max(int(tokens), 0)
        if tokens > self.limit:
            raise LlmRejected(
                f"The call may use {tokens} tokens, more than the whole budget of {self.limit} "
                "tokens per minute; lower max_tokens or shorten the prompt.",
                extra={"tokens": tokens, "tokens_per_minute": self.limit},
            )
        deadline = time.monotonic() + self._max_wait
        waited = 0.0
        while True:
            try:
                reserved, window, wait_ms = await self._reserve(
                    keys=[self.key], args=[self.limit, tokens, self._window_ms]
                )
            except RedisError as exc:
                # Availability over strictness: the provider's own throttling still protects
                # the quota, and our retries handle it.
                logger.warning("token budget unavailable, not enforced: %s", exc)
                return Reservation(tokens, None, waited)
            if int(reserved):
                return Reservation(tokens, int(window), waited)
            # Spread the waiters over the start of the next window.
            pause = int(wait_ms) / 1000 + random.uniform(0, self._window_ms / 1000 * 0.05)
            remaining = deadline - time.monotonic()
            if pause > remaining:
                raise LlmThrottled(
                    f"The shared budget of {self.limit} tokens per minute stayed exhausted for "
                    f"{self._max_wait:g} s.",
                    retry_after=pause,
                )
            await asyncio.sleep(pause)
            waited += pause

    async def release(self, reservation: Reservation, used_tokens: int) -> None:
        """Settle a reservation with the tokens actually used: the unused part goes back to
        its window (and a call that used more than it reserved is charged the difference)."""
        if reservation.window is None:
            return
        delta = max(int(used_tokens), 0) - reservation.tokens
        if delta == 0:
            return
        try:
            await self._settle(keys=[self.key], args=[reservation.window, delta])
        except RedisError as exc:
            logger.warning("token budget unavailable, reservation not settled: %s", exc)

    async def used(self) -> int:
        """Tokens used in the current window (for metrics and tests)."""
        return int(await self._used(keys=[self.key], args=[self._window_ms]))


__all__ = ["Reservation", "TokenBudget"]
