"""OpenTelemetry set-up shared by every service: traces and metrics, no-op, console, or OTLP
as configured (``MOMENTUM_OTEL_EXPORTER``), and the helpers that create instruments from the
metric table (momentum_domain.metric_names)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Meter, ObservableGauge, Observation
from opentelemetry.metrics import Counter as CounterInstrument
from opentelemetry.metrics import Histogram as HistogramInstrument
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from momentum_domain.config import Settings
from momentum_domain.kit.unit_of_work import after_commit
from momentum_domain.metric_names import MetricSpec

# Sums go out as deltas: CloudWatch adds up what each period received, and the collector's EMF
# exporter would otherwise turn cumulative sums into deltas itself, dropping each process's
# first value (a job that finished before the second export would never be counted).
DELTA_SUMS: dict[type, AggregationTemporality] = {
    Counter: AggregationTemporality.DELTA,
    ObservableCounter: AggregationTemporality.DELTA,
    Histogram: AggregationTemporality.DELTA,
}


def _resource(settings: Settings, service_name: str) -> Resource:
    return Resource.create({"service.name": service_name, "deployment.environment": settings.env})


class _RootSampler(Sampler):
    """For spans without a parent: ``ratio`` of them, but never a lone database, Redis or HTTP
    call. Those are the broker's polls, the sweeper's and the video worker's periodic queries:
    a trace each, all day long, saying nothing; inside a request or a step they are kept."""

    def __init__(self, ratio: float) -> None:
        self._ratio = TraceIdRatioBased(ratio)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if kind is SpanKind.CLIENT:
            return SamplingResult(Decision.DROP, None, trace_state)
        return self._ratio.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"NoLoneClientCalls{{{self._ratio.get_description()}}}"


def sampler(ratio: float) -> Sampler:
    """Keep ``ratio`` of the root traces; a span with a parent follows the parent's decision,
    so a trace is kept or dropped whole across services (the generator's steps continue the
    admin's request). Errors and slow requests cannot be chosen here, before they happen: the
    collector does that (infra/compute.py), so the tasks send it every trace (ratio 1)."""
    return ParentBased(_RootSampler(ratio))


def tracing_enabled() -> bool:
    """Whether ``setup_tracing`` installed an SDK provider in this process."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def _instrument_clients() -> None:
    """Spans for every Redis command and outgoing HTTP request. The instrumentors patch the
    client classes once per process; they are never called with tracing off, so then the
    clients are untouched and cost nothing."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    for instrumentor in (RedisInstrumentor(), HTTPXClientInstrumentor()):
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()


def instrument_engine(engine: AsyncEngine) -> None:
    """A span per SQL statement on ``engine``, when tracing is on (``db.create_engine``)."""
    if tracing_enabled():
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

        # What SQLAlchemyInstrumentor().instrument(engine=...) does for one engine, without its
        # process-wide patches of create_engine and Engine.connect (the instrumentor acts
        # once per process, and every engine here is made by db.create_engine). Its pool-usage
        # metric goes to a no-op meter: it is not in the metric table the collector exports.
        EngineTracer(  # type: ignore[no-untyped-call]
            trace.get_tracer("opentelemetry.instrumentation.sqlalchemy"),
            engine.sync_engine,
            metrics.NoOpMeter("sqlalchemy").create_up_down_counter("db.client.connections.usage"),
        )


def setup_tracing(
    settings: Settings, service_name: str, *, processor: SpanProcessor | None = None
) -> TracerProvider | None:
    """Install the global tracer provider once per process and return it (None: tracing off).

    ``processor`` lets tests attach an in-memory exporter; otherwise the exporter comes from
    ``MOMENTUM_OTEL_EXPORTER``.
    """
    current = trace.get_tracer_provider()
    if (
        processor is None
        and settings.otel_exporter == "none"
        and not isinstance(current, TracerProvider)
    ):
        # Tracing off: keep OpenTelemetry's no-op provider, so spans cost nothing. A later
        # call with an exporter or a processor (tests) still installs the SDK provider.
        return None
    if isinstance(current, TracerProvider):
        if processor is not None:
            current.add_span_processor(processor)
        return current
    provider = TracerProvider(
        resource=_resource(settings, service_name),
        sampler=sampler(settings.otel_trace_sample_ratio),
    )
    if processor is not None:
        provider.add_span_processor(processor)
    elif settings.otel_exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif settings.otel_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otel_endpoint))
        )
    trace.set_tracer_provider(provider)
    _instrument_clients()
    return provider


def setup_metrics(
    settings: Settings, service_name: str, *, reader: MetricReader | None = None
) -> MeterProvider | None:
    """Install the global meter provider once per process and return it (None: metrics off).

    Metrics are exported every ``otel_metric_export_interval_seconds`` through the exporter
    ``MOMENTUM_OTEL_EXPORTER`` names; ``reader`` lets tests read them in memory instead.
    Instruments created before this call (module-level ones) report through it once installed.
    """
    current = metrics.get_meter_provider()
    if isinstance(current, MeterProvider):
        return current  # an SDK provider takes no readers after it was built
    if reader is None:
        if settings.otel_exporter == "none":
            return None  # the API's no-op meter: instruments cost nothing
        exporter: MetricExporter
        if settings.otel_exporter == "console":
            exporter = ConsoleMetricExporter(preferred_temporality=DELTA_SUMS)
        else:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

            exporter = OTLPMetricExporter(
                endpoint=settings.otel_endpoint, preferred_temporality=DELTA_SUMS
            )
        reader = PeriodicExportingMetricReader(
            exporter, export_interval_millis=settings.otel_metric_export_interval_seconds * 1000
        )
    provider = MeterProvider(resource=_resource(settings, service_name), metric_readers=[reader])
    metrics.set_meter_provider(provider)
    return provider


@dataclass(frozen=True)
class Telemetry:
    """What ``setup_telemetry`` installed; ``shutdown`` on exit sends what is still buffered."""

    tracer_provider: TracerProvider | None
    meter_provider: MeterProvider | None

    def flush(self) -> None:
        if self.meter_provider is not None:
            self.meter_provider.force_flush()
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush()

    def shutdown(self) -> None:
        # The meter provider's shutdown makes a last collection and export: counts since the
        # previous export are not lost with the process.
        if self.meter_provider is not None:
            self.meter_provider.shutdown()
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()


def setup_telemetry(settings: Settings, service_name: str) -> Telemetry:
    """Traces and metrics for a service process, both through ``MOMENTUM_OTEL_EXPORTER``."""
    return Telemetry(setup_tracing(settings, service_name), setup_metrics(settings, service_name))


# ---- instruments from the metric table ----------------------------------------------------


def create_counter(meter: Meter, spec: MetricSpec) -> CounterInstrument:
    assert spec.kind == "counter", spec
    return meter.create_counter(spec.name, unit=spec.unit, description=spec.description)


# Durations in seconds (OpenTelemetry's HTTP conventions): 5 ms to 10 s.
DURATION_BUCKETS_SECONDS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0
)  # fmt: skip


def create_histogram(meter: Meter, spec: MetricSpec) -> HistogramInstrument:
    assert spec.kind == "histogram", spec
    return meter.create_histogram(
        spec.name,
        unit=spec.unit,
        description=spec.description,
        explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS_SECONDS)
        if spec.unit == "s"
        else None,
    )


def create_gauge(
    meter: Meter, spec: MetricSpec, read: Callable[[], float | None]
) -> ObservableGauge:
    """An observable gauge reporting ``read()`` at each collection, or nothing while it is None
    (a value not known yet, or no longer current, is better missing than wrong)."""
    assert spec.kind == "gauge", spec

    def observe(_: CallbackOptions) -> Iterable[Observation]:
        value = read()
        return [] if value is None else [Observation(value)]

    return meter.create_observable_gauge(
        spec.name, callbacks=[observe], unit=spec.unit, description=spec.description
    )


def add_after_commit(
    session: AsyncSession | Session,
    counter: CounterInstrument,
    amount: float,
    attributes: Mapping[str, str] | None = None,
) -> None:
    """Add to ``counter`` once the session's transaction commits, not if it rolls back: a
    count says what the database holds, however often the transaction is retried."""
    after_commit(session, lambda: counter.add(amount, attributes))


__all__ = [
    "Telemetry",
    "add_after_commit",
    "create_counter",
    "create_gauge",
    "create_histogram",
    "instrument_engine",
    "sampler",
    "setup_metrics",
    "setup_telemetry",
    "setup_tracing",
    "tracing_enabled",
]
