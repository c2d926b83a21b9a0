"""The resilient layer around any provider: retries, breaker, spans and cost; pricing; the
factory."""

from __future__ import annotations

import logging
from collections import deque
from decimal import Decimal

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode, Tracer

from momentum_domain import metric_names
from momentum_domain.config import Settings
from momentum_domain.generation.pricing import cost_usd
from momentum_domain.kit.resilience import CircuitBreaker
from momentum_domain.kit.telemetry import create_counter
from momentum_generator.llm import (
    CircuitOpenError,
    LlmError,
    LlmProvider,
    LlmRejected,
    LlmRequest,
    LlmResponse,
    LlmThrottled,
    LlmUnavailable,
    OfflineProvider,
    OpenAICompatibleProvider,
    ResilientProvider,
    create_llm_provider,
    factory,
)
from momentum_generator.llm.factory import provider_breaker

SONNET = "anthropic.claude-3-5-sonnet-20240620-v1:0"
PRICES = {SONNET: (0.003, 0.015), "offline": (0.0, 0.0)}
REQUEST = LlmRequest("outline", "system", "TOPIC: SQL\nDAYS: 7", 4000)


class Scripted(LlmProvider):
    """A provider that plays a script: each call takes the next outcome (an error to raise or
    a text to answer) and records the request."""

    name = "scripted"
    model = SONNET

    def __init__(self, *outcomes: LlmError | str, image: bytes | None = None) -> None:
        self.outcomes: deque[LlmError | str] = deque(outcomes)
        self.requests: list[LlmRequest] = []
        self.image = image

    async def complete(self, request: LlmRequest) -> LlmResponse:
        self.requests.append(request)
        outcome = self.outcomes.popleft() if self.outcomes else "ok"
        if isinstance(outcome, LlmError):
            raise outcome
        return LlmResponse(
            text=outcome,
            input_tokens=1000,
            output_tokens=2000,
            model=request.model or self.model,
            provider=self.name,
            latency_ms=12.5,
        )

    async def generate_image(self, prompt: str) -> bytes | None:
        outcome = self.outcomes.popleft() if self.outcomes else None
        if isinstance(outcome, LlmError):
            raise outcome
        return self.image


class Waits(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter) -> Tracer:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test")


def wrap(
    inner: LlmProvider,
    tracer: Tracer,
    *,
    waits: Waits | None = None,
    breaker: CircuitBreaker | None = None,
    max_attempts: int = 4,
) -> ResilientProvider:
    return ResilientProvider(
        inner,
        breaker=breaker or CircuitBreaker("scripted", failure_threshold=100),
        max_attempts=max_attempts,
        tracer=tracer,
        prices=PRICES,
        backoff_base=1.0,
        backoff_max=8.0,
        max_retry_after=20.0,
        sleep=waits if waits is not None else Waits(),
    )


def only_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    (span,) = exporter.get_finished_spans()
    return span


async def test_a_call_is_one_span_with_model_tokens_attempts_and_cost(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    provider = wrap(Scripted(LlmUnavailable("503"), "answer"), tracer)

    response = await provider.complete(REQUEST)

    assert response.text == "answer"
    assert response.attempts == 2
    span = only_span(exporter)
    assert span.name == "llm.outline"
    assert span.attributes is not None
    assert span.attributes["llm.provider"] == "scripted"
    assert span.attributes["llm.model"] == SONNET
    assert span.attributes["llm.input_tokens"] == 1000
    assert span.attributes["llm.output_tokens"] == 2000
    assert span.attributes["llm.attempts"] == 2
    assert span.attributes["llm.cost_usd"] == pytest.approx(0.003 + 0.030)
    assert [e.name for e in span.events] == ["llm.retryable_error"]


async def test_a_failed_call_records_the_error_on_its_span(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    provider = wrap(Scripted(LlmRejected("bad request")), tracer)
    with pytest.raises(LlmRejected):
        await provider.complete(REQUEST)
    span = only_span(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["llm.attempts"] == 1
    assert any(e.name == "exception" for e in span.events)


async def test_backoff_is_exponential_with_full_jitter_and_capped(tracer: Tracer) -> None:
    waits = Waits()
    failures = [LlmUnavailable("down") for _ in range(7)]
    provider = wrap(Scripted(*failures), tracer, waits=waits, max_attempts=8)

    await provider.complete(REQUEST)

    assert len(waits) == 7
    for attempt, wait in enumerate(waits, start=1):
        assert 0 <= wait <= min(1.0 * 2**attempt, 8.0)
    assert len(set(waits)) > 1  # jittered, not a fixed schedule


async def test_retry_after_is_honoured_and_bounded(tracer: Tracer) -> None:
    waits = Waits()
    provider = wrap(
        Scripted(LlmThrottled("429", retry_after=3.0), LlmThrottled("429", retry_after=600), "ok"),
        tracer,
        waits=waits,
    )
    await provider.complete(REQUEST)
    first, second = waits
    assert 3.0 <= first <= 4.0
    assert 20.0 <= second <= 21.0  # capped at max_retry_after


async def test_only_throttling_and_unavailability_are_retried(tracer: Tracer) -> None:
    scripted = Scripted(LlmRejected("no such model"), "never reached")
    with pytest.raises(LlmRejected):
        await wrap(scripted, tracer).complete(REQUEST)
    assert len(scripted.requests) == 1

    scripted = Scripted(*(LlmThrottled("429") for _ in range(10)))
    with pytest.raises(LlmThrottled):
        await wrap(scripted, tracer, max_attempts=3).complete(REQUEST)
    assert len(scripted.requests) == 3


async def test_breaker_opens_fails_fast_then_lets_one_trial_through(
    tracer: Tracer, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr("momentum_domain.kit.resilience.time.monotonic", lambda: clock[0])
    breaker = CircuitBreaker("scripted", failure_threshold=2, reset_after=30)
    scripted = Scripted(LlmUnavailable("a"), LlmUnavailable("b"), "recovered")
    provider = wrap(scripted, tracer, breaker=breaker, max_attempts=5)

    with pytest.raises(CircuitOpenError) as raised:
        await provider.complete(REQUEST)
    assert isinstance(raised.value.__cause__, LlmUnavailable)
    assert len(scripted.requests) == 2
    with pytest.raises(CircuitOpenError):
        await provider.complete(REQUEST)
    assert len(scripted.requests) == 2
    assert breaker.opened

    clock[0] += 31  # half-open: one trial call, which succeeds and closes the breaker
    assert breaker.opened  # reading it takes no trial
    assert (await provider.complete(REQUEST)).text == "recovered"
    assert not breaker.is_open
    assert not breaker.opened
    assert (await provider.complete(REQUEST)).text == "ok"


async def test_images_go_through_the_same_layer(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    provider = wrap(Scripted(LlmUnavailable("503"), image=b"png"), tracer)
    assert await provider.generate_image("a thumbnail") == b"png"
    span = only_span(exporter)
    assert span.name == "llm.image"
    assert span.attributes is not None
    assert span.attributes["llm.attempts"] == 2
    assert await wrap(OfflineProvider(), tracer).generate_image("a thumbnail") is None


def test_cost_from_the_price_table() -> None:
    assert cost_usd(SONNET, 1000, 2000, PRICES) == Decimal("0.033")
    assert cost_usd(SONNET, 1, 1, PRICES) == Decimal("0.000018")
    # A cross-region inference profile is priced as its model.
    assert cost_usd(f"us.{SONNET}", 1000, 0, PRICES) == Decimal("0.003")
    assert cost_usd("offline", 10_000, 10_000, PRICES) == Decimal(0)


def test_unknown_model_costs_nothing_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert cost_usd("mystery-model-v9", 1000, 1000, PRICES) == Decimal(0)
    assert "mystery-model-v9" in caplog.text


async def test_factory_builds_the_configured_provider(redis_url: str) -> None:
    from redis.asyncio import Redis

    offline = create_llm_provider(Settings(env="test", llm_provider="offline"), None)
    assert isinstance(offline, ResilientProvider)
    assert isinstance(offline.inner, OfflineProvider)
    assert offline.budget is None  # no quota to protect
    assert (await offline.complete(REQUEST)).model == "offline"

    redis = Redis.from_url(redis_url)
    try:
        settings = Settings(
            env="test", llm_provider="openai", llm_max_attempts=2, llm_tokens_per_minute=5000
        )
        remote = create_llm_provider(settings, redis)
        assert isinstance(remote.inner, OpenAICompatibleProvider)
        assert remote.budget is not None
        assert remote.budget.limit == 5000
        assert remote.breaker is create_llm_provider(settings, redis).breaker
        with pytest.raises(ValueError, match="Redis"):
            create_llm_provider(settings, None)
    finally:
        await redis.aclose()


def _points(reader: InMemoryMetricReader, name: str) -> list[tuple[dict[str, object], float]]:
    data = reader.get_metrics_data()
    return [
        (dict(point.attributes or {}), point.value)
        for resource in (data.resource_metrics if data else [])
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


async def test_throttled_attempts_are_counted_per_provider(tracer: Tracer) -> None:
    reader = InMemoryMetricReader()
    spec = metric_names.GENERATION_PROVIDER_THROTTLES
    throttles = create_counter(MeterProvider(metric_readers=[reader]).get_meter("tests"), spec)
    provider = ResilientProvider(
        Scripted(LlmThrottled("429"), LlmUnavailable("503"), LlmThrottled("429"), "answer"),
        breaker=CircuitBreaker("scripted", failure_threshold=100),
        tracer=tracer,
        sleep=Waits(),
        throttles=throttles,
    )
    # Counted from zero before any call: the series exists while nothing is throttled.
    assert _points(reader, spec.name) == [({"provider": "scripted"}, 0)]

    assert (await provider.complete(REQUEST)).attempts == 4

    # The two throttled attempts; the unavailable one is not a throttle.
    assert _points(reader, spec.name) == [({"provider": "scripted"}, 2)]


def test_the_breaker_gauge_reports_each_llm_breaker_by_provider(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(factory, "_breakers", {})  # this test's breakers only
    reader = InMemoryMetricReader()
    spec = metric_names.GENERATION_PROVIDER_BREAKER_OPEN
    # The factory's callback, observed through a meter of this test's own.
    MeterProvider(metric_readers=[reader]).get_meter("tests").create_observable_gauge(
        spec.name, callbacks=[factory._breaker_states]
    )
    breaker = provider_breaker("gauge-test")
    for _ in range(factory.BREAKER_FAILURE_THRESHOLD):
        breaker.record_failure()
    assert _points(reader, spec.name) == [({"provider": "gauge-test"}, 1)]
    breaker.record_success()
    assert _points(reader, spec.name) == [({"provider": "gauge-test"}, 0)]
