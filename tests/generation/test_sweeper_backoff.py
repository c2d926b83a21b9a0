"""While Redis is down the generation sweeper backs off and says so once, without a traceback;
once Redis answers again it says that once too."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, cast

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from momentum_generator.worker import Generator, Sweeper


class FlakyGenerator:
    def __init__(self) -> None:
        self.redis_up = False

    async def sweep(self) -> int:
        if not self.redis_up:
            raise RedisConnectionError(
                "Error 111 connecting to 127.0.0.1:6379. Connection refused."
            )
        return 0


class LoopThread:
    """Dramatiq's event loop thread, reduced to what the sweeper asks of it."""

    def run_coroutine(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run(coroutine)


def test_a_redis_outage_is_one_warning_and_its_end_one_info(
    caplog: pytest.LogCaptureFixture,
) -> None:
    generator = FlakyGenerator()
    sweeper = Sweeper(cast(Generator, generator), health_file=None)
    loop = cast(Any, LoopThread())
    caplog.set_level(logging.INFO, logger="momentum_generator.worker")

    waits = []
    for _ in range(5):
        sweeper._sweep(loop)
        waits.append(sweeper._backoff)
    assert waits == [5.0, 10.0, 20.0, 40.0, 60.0]  # then no more often than once a minute
    generator.redis_up = True
    sweeper._sweep(loop)
    sweeper._sweep(loop)

    records = [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records]
    assert [(level, exc) for level, _, exc in records] == [("WARNING", None), ("INFO", None)]
    assert "Redis unreachable" in records[0][1]
    assert "Redis reachable again" in records[1][1]
    assert sweeper._backoff == 0
