"""A circuit breaker: after repeated failures, stop calling a dependency for a while instead of
making every request wait for its timeout."""

from __future__ import annotations

import time


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

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None

    def record_failure(self) -> None:
        self._failures += 1
        if self._failures >= self._threshold:
            self._opened_at = time.monotonic()
