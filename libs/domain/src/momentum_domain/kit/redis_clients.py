"""Redis clients that ride out a blip: a pooled connection idle for a while is pinged before
use (a restarted Redis leaves every pooled socket dead), and a command that meets a dropped
connection or a timeout reconnects and tries again with a short backoff instead of failing
whatever it was part of. Every service builds its clients here."""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError, TimeoutError
from redis.retry import Retry

# A few tries over about 1.5 s: enough for a failover or a restart's first moments; a longer
# outage is the callers' (the sweeper re-sends, the API answers without Redis).
RETRIES = 4
HEALTH_CHECK_SECONDS = 5


def _backoff() -> ExponentialWithJitterBackoff:
    return ExponentialWithJitterBackoff(cap=1.0, base=0.1)


def _options(overrides: dict[str, Any]) -> dict[str, Any]:
    return {
        "health_check_interval": HEALTH_CHECK_SECONDS,
        "retry_on_error": [ConnectionError, TimeoutError],
        "socket_connect_timeout": 2.0,
        "socket_keepalive": True,
        **overrides,
    }


def sync_redis(url: str, *, retries: int = RETRIES, **overrides: Any) -> redis.Redis:
    return redis.Redis.from_url(url, retry=Retry(_backoff(), retries), **_options(overrides))


def async_redis(url: str, *, retries: int = RETRIES, **overrides: Any) -> redis.asyncio.Redis:
    """``retries``: fewer where a caller must not wait (a request), one at least so that a
    connection a restart killed is replaced at once."""
    return redis.asyncio.Redis.from_url(
        url, retry=AsyncRetry(_backoff(), retries), **_options(overrides)
    )
