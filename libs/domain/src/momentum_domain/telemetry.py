"""OpenTelemetry set-up shared by every service: no-op, console, or OTLP as configured."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from momentum_domain.config import Settings


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
        resource=Resource.create(
            {"service.name": service_name, "deployment.environment": settings.env}
        )
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
    return provider
