"""A circuit breaker: after repeated failures, stop calling a dependency for a while instead of
making every request wait for its timeout."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


class CircuitBreaker:
    def __init__(self, name: str, *, failure_threshold: int = 3, reset_after: float = 5.0) -> None:
        self.name = name
        self._threshold = failure_threshold
        self._reset_after = reset_after
        self._failures = 0
        self._opened_at: float | None = None

    @property
    def is_open(self) -> bool:
        """Open means "skip the call". After ``reset_after`` seconds one trial call is let
        through (half-open); its outcome closes or re-opens the breaker."""
        if self._opened_at is None:
            return False
        if time.monotonic() - self._opened_at >= self._reset_after:
            self._opened_at = time.monotonic()  # one trial per reset period
            return False
        return True

    @property
    def opened(self) -> bool:
        """Open or half-open, without taking the trial call ``is_open`` lets through."""
        return self._opened_at is not None

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None

    def record_failure(self) -> None:
        self._failures += 1
        if self._failures >= self._threshold:
            self._opened_at = time.monotonic()


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Retry-After as seconds or an HTTP date (and OpenAI's ``retry-after-ms``)."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(float(milliseconds) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)
