"""Every LLM call goes through here: the shared token budget, bounded retries with exponential
backoff and full jitter (honouring Retry-After), a circuit breaker per provider, and one
OpenTelemetry span per call carrying the model, tokens, attempts and cost."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from opentelemetry import metrics, trace
from opentelemetry.metrics import Counter
from opentelemetry.trace import Span, Tracer
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)
from tenacity.wait import wait_base

from momentum_domain import metric_names
from momentum_domain.generation.pricing import cost_usd
from momentum_domain.kit.resilience import CircuitBreaker
from momentum_domain.kit.telemetry import create_counter
from momentum_generator.llm.base import (
    CircuitOpenError,
    LlmError,
    LlmProvider,
    LlmRejected,
    LlmRequest,
    LlmResponse,
    LlmThrottled,
    LlmUnavailable,
    estimate_tokens,
)
from momentum_generator.llm.budget import Reservation, TokenBudget

logger = logging.getLogger(__name__)
T = TypeVar("T")
RETRYABLE = (LlmThrottled, LlmUnavailable)
_throttles = create_counter(
    metrics.get_meter("momentum.generation.llm"), metric_names.GENERATION_PROVIDER_THROTTLES
)


class _Backoff(wait_base):
    """Full jitter (a random wait between 0 and base * 2^n, capped), or the provider's
    Retry-After when it gave one (plus a little jitter so waiters do not return together)."""

    def __init__(self, base: float, cap: float, max_retry_after: float) -> None:
        self._jitter = wait_random_exponential(multiplier=base, max=cap)
        self._base = base
        self._max_retry_after = max_retry_after

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, LlmThrottled) and error.retry_after is not None:
            return min(error.retry_after, self._max_retry_after) + random.uniform(0, self._base)
        return float(self._jitter(retry_state))


class ResilientProvider(LlmProvider):
    def __init__(
        self,
        inner: LlmProvider,
        *,
        breaker: CircuitBreaker,
        budget: TokenBudget | None = None,
        max_attempts: int = 4,
        tracer: Tracer | None = None,
        prices: Mapping[str, tuple[float, float]] | None = None,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        max_retry_after: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        throttles: Counter | None = None,
    ) -> None:
        """``max_attempts`` counts the first call. Waits between attempts are full-jitter
        exponential (``backoff_base`` * 2^n seconds, at most ``backoff_max``), or Retry-After
        (at most ``max_retry_after``). With ``prices`` each span gets ``llm.cost_usd``. ``sleep``
        waits between attempts (tests pass one that records the waits). ``throttles`` counts
        throttled attempts (the shared counter unless a test passes its own)."""
        self.inner = inner
        self.name = inner.name
        self.model = inner.model
        self.breaker = breaker
        self.budget = budget
        self._max_attempts = max(max_attempts, 1)
        self._tracer = tracer or trace.get_tracer(__name__)
        self._prices = prices
        self._wait = _Backoff(backoff_base, backoff_max, max_retry_after)
        self._sleep = sleep
        self._throttles = throttles or _throttles
        self._attributes = {"provider": self.name}
        # A first point at zero: the series exists in CloudWatch before the first throttle.
        self._throttles.add(0, self._attributes)

    async def complete(self, request: LlmRequest) -> LlmResponse:
        # Bedrock reserves input plus max_tokens against the quota when a call starts.
        reserve = estimate_tokens(request.system + request.prompt) + request.max_tokens
        with self._tracer.start_as_current_span(f"llm.{request.purpose}") as span:
            span.set_attribute("llm.provider", self.name)
            span.set_attribute("llm.model", request.model or self.inner.model)
            span.set_attribute("llm.purpose", request.purpose)
            response, attempts = await self._call(
                span,
                lambda: self.inner.complete(request),
                reserve=reserve,
                used=lambda r: r.input_tokens + r.output_tokens,
            )
            response = dataclasses.replace(response, attempts=attempts)
            span.set_attribute("llm.model", response.model)
            span.set_attribute("llm.input_tokens", response.input_tokens)
            span.set_attribute("llm.output_tokens", response.output_tokens)
            span.set_attribute("llm.latency_ms", response.latency_ms)
            if response.truncated:
                span.set_attribute("llm.truncated", True)
            if self._prices is not None:
                cost = cost_usd(
                    response.model, response.input_tokens, response.output_tokens, self._prices
                )
                span.set_attribute("llm.cost_usd", float(cost))
            return response

    async def generate_image(self, prompt: str) -> bytes | None:
        with self._tracer.start_as_current_span("llm.image") as span:
            span.set_attribute("llm.provider", self.name)
            image, _ = await self._call(span, lambda: self.inner.generate_image(prompt))
            span.set_attribute("llm.image_bytes", len(image) if image is not None else 0)
            return image

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def _call(
        self,
        span: Span,
        call: Callable[[], Awaitable[T]],
        *,
        reserve: int | None = None,
        used: Callable[[T], int] | None = None,
    ) -> tuple[T, int]:
        """Run ``call`` with the breaker, the budget (``reserve`` tokens per attempt, settled
        with ``used(result)``) and retries; returns the result and the number of attempts."""
        attempts = 0
        last_error: LlmError | None = None
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(RETRYABLE),
            stop=stop_after_attempt(self._max_attempts),
            wait=self._wait,
            reraise=True,
            sleep=self._sleep,
            before_sleep=lambda state: _log_retry(self.name, state),
        )
        try:
            async for attempt_state in retrying:
                # Outside the attempt, so neither is retried: an open breaker fails fast, and
                # a budget that stayed exhausted has already waited long enough.
                if self.breaker.is_open:
                    raise CircuitOpenError(self.name) from last_error
                reservation = await self._reserve(reserve, span)
                attempts += 1
                with attempt_state:
                    spent = 0
                    try:
                        result = await call()
                        spent = used(result) if used is not None else 0
                    except RETRYABLE as exc:
                        last_error = exc
                        if isinstance(exc, LlmThrottled):
                            self._throttles.add(1, self._attributes)
                        self.breaker.record_failure()
                        span.add_event(
                            "llm.retryable_error",
                            {"error.type": type(exc).__name__, "attempt": attempts},
                        )
                        raise
                    except LlmRejected:
                        # The provider answered: it is up, and the request is at fault.
                        self.breaker.record_success()
                        raise
                    finally:
                        if reservation is not None and self.budget is not None:
                            await self.budget.release(reservation, spent)
                    self.breaker.record_success()
                    span.set_attribute("llm.attempts", attempts)
                    return result, attempts
        except BaseException:
            # The span itself records the exception and sets an error status.
            span.set_attribute("llm.attempts", attempts)
            raise
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    async def _reserve(self, tokens: int | None, span: Span) -> Reservation | None:
        if self.budget is None or tokens is None:
            return None
        try:
            reservation = await self.budget.reserve(tokens)
        except LlmThrottled:
            self._throttles.add(1, self._attributes)
            raise
        if reservation.waited_seconds > 0:
            span.add_event("llm.budget_wait", {"seconds": reservation.waited_seconds})
        return reservation


def _log_retry(provider: str, state: RetryCallState) -> None:
    outcome = state.outcome
    error = outcome.exception() if outcome is not None else None
    delay = state.next_action.sleep if state.next_action is not None else 0.0
    logger.warning(
        "llm provider %s failed (attempt %d): %s; retrying in %.2f s",
        provider,
        state.attempt_number,
        error,
        delay,
    )


__all__ = ["RETRYABLE", "ResilientProvider"]
