"""The shared tokens-per-minute budget, on the real Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from momentum_domain.kit.resilience import CircuitBreaker
from momentum_generator.llm import (
    LlmRejected,
    LlmRequest,
    LlmThrottled,
    OfflineProvider,
    ResilientProvider,
    TokenBudget,
)

HOUR = 3600.0  # windows so long that a test never straddles two of them


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    async for key in client.scan_iter(match="test-budget:*"):
        await client.delete(key)
    await client.aclose()


def budget(redis: Redis, limit: int, **kwargs: float) -> TokenBudget:
    return TokenBudget(
        redis, key_prefix=f"test-budget:{uuid.uuid4().hex}", tokens_per_minute=limit, **kwargs
    )


async def test_concurrent_reservations_never_exceed_the_budget(
    redis: Redis, redis_url: str
) -> None:
    first = budget(redis, 1000, window_seconds=0.25, max_wait_seconds=30)
    # Another worker: its own connection, the same key.
    second_client = Redis.from_url(redis_url)
    second = TokenBudget(
        second_client,
        key_prefix=first.key.removesuffix(":tpm"),
        tokens_per_minute=1000,
        window_seconds=0.25,
        max_wait_seconds=30,
    )
    sizes = [100, 250, 400, 50, 300, 150, 200, 350, 100, 250] * 3
    try:
        reservations = await asyncio.gather(
            *((first, second)[i % 2].reserve(tokens) for i, tokens in enumerate(sizes))
        )
    finally:
        await second_client.aclose()

    per_window: dict[int | None, int] = defaultdict(int)
    for reservation in reservations:
        per_window[reservation.window] += reservation.tokens
    assert None not in per_window
    assert sum(per_window.values()) == sum(sizes) == 6450
    assert max(per_window.values()) <= 1000
    assert len(per_window) >= 7  # 6450 tokens need at least seven windows of 1000
    assert any(r.waited_seconds > 0 for r in reservations)


async def test_release_gives_the_unused_part_back(redis: Redis) -> None:
    tokens = budget(redis, 1000, window_seconds=HOUR, max_wait_seconds=0)
    reservation = await tokens.reserve(800)
    assert await tokens.used() == 800
    with pytest.raises(LlmThrottled):
        await tokens.reserve(500)  # 1300 > 1000, and no waiting allowed

    await tokens.release(reservation, used_tokens=300)

    assert await tokens.used() == 300
    await tokens.reserve(700)  # fits now
    assert await tokens.used() == 1000


async def test_a_call_that_used_more_than_reserved_is_charged(redis: Redis) -> None:
    tokens = budget(redis, 1000, window_seconds=HOUR)
    reservation = await tokens.reserve(100)
    await tokens.release(reservation, used_tokens=250)
    assert await tokens.used() == 250


async def test_a_request_larger_than_the_whole_budget_is_rejected(redis: Redis) -> None:
    tokens = budget(redis, 1000, window_seconds=HOUR)
    with pytest.raises(LlmRejected, match="more than the whole budget"):
        await tokens.reserve(1001)
    assert await tokens.used() == 0
    await tokens.reserve(1000)  # exactly the budget is fine


async def test_waiting_is_bounded(redis: Redis) -> None:
    tokens = budget(redis, 1000, window_seconds=HOUR, max_wait_seconds=0.2)
    await tokens.reserve(900)
    with pytest.raises(LlmThrottled) as raised:
        await tokens.reserve(200)
    assert raised.value.retry_after is not None
    assert raised.value.retry_after > 0.2


async def test_an_unreachable_redis_does_not_stop_generation() -> None:
    dead = Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    try:
        tokens = TokenBudget(dead, key_prefix="test-budget:dead", tokens_per_minute=1000)
        reservation = await tokens.reserve(500)
        assert reservation.window is None
        await tokens.release(reservation, 10)  # nothing to settle, and no error
    finally:
        await dead.aclose()


async def test_resilient_provider_reserves_input_plus_max_tokens_and_settles(
    redis: Redis,
) -> None:
    tokens = budget(redis, 100_000, window_seconds=HOUR)
    provider = ResilientProvider(
        OfflineProvider(), breaker=CircuitBreaker("test-offline"), budget=tokens
    )
    request = LlmRequest("script", "system", "TITLE: Joins\nTARGET_WORDS: 80", 50_000)

    response = await provider.complete(request)

    # During the call input + max_tokens were held; afterwards only what was used remains.
    assert await tokens.used() == response.input_tokens + response.output_tokens
    with pytest.raises(LlmRejected):
        await provider.complete(
            LlmRequest("script", "system", "TITLE: Joins\nTARGET_WORDS: 80", 100_000)
        )
