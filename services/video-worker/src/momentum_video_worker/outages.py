"""One log line per change of state for a dependency the worker's loops call (PostgreSQL,
Redis): a warning when it starts failing, an info line when it works again, and a growing pause
between attempts meanwhile, instead of a traceback every second for the whole outage."""

from __future__ import annotations

import logging

import asyncpg
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

logger = logging.getLogger(__name__)


class OutageLog:
    def __init__(self, name: str, *, base_delay: float = 1.0, max_delay: float = 5.0) -> None:
        self.name = name
        self.failures = 0
        self._base_delay = base_delay
        self._max_delay = max_delay

    def failed(self, exc: BaseException) -> float:
        """Record a failed attempt; returns how long to wait before the next one."""
        self.failures += 1
        if self.failures == 1:
            # A connection problem is weather; anything else is a bug, worth its traceback once.
            logger.warning(
                "%s unavailable: %s; retrying with backoff until it answers",
                self.name,
                _summary(exc),
                exc_info=None if is_connection_error(exc) else exc,
            )
        return min(self._base_delay * 2.0 ** (self.failures - 1), self._max_delay)

    def succeeded(self) -> None:
        if self.failures:
            logger.info("%s available again after %d failed attempts", self.name, self.failures)
        self.failures = 0


def is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says a server could not be reached or the connection
    broke, rather than that a statement or command was wrong."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, _CONNECTION_ERRORS):
            return True
        if isinstance(error, DBAPIError) and error.connection_invalidated:
            return True
        error = error.__cause__ or error.__context__
    return False


# Refused, reset or timed out sockets (OSError), PostgreSQL shutting down, starting up or full,
# the pool out of connections, Redis unreachable.
_CONNECTION_ERRORS = (
    OSError,
    PoolTimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
    RedisConnectionError,
    RedisTimeoutError,
)


def _summary(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).splitlines()[0] if str(cause) else ""
    return f"{type(cause).__name__}: {text}"
