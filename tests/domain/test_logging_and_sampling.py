"""The services' log set-up (text or JSON lines with the current span's ids) and the trace
sampler. Each set-up runs in a fresh interpreter: logging and tracer providers are global."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from momentum_domain.kit.telemetry import sampler


def run(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


LOG_INSIDE_A_SPAN = """
    import logging
    from opentelemetry import trace
    from momentum_domain.config import Settings
    from momentum_domain.kit.logging_setup import setup_logging
    from momentum_domain.kit.telemetry import setup_tracing

    settings = Settings()
    setup_logging(settings)
    setup_tracing(settings, "momentum-tests")
    log = logging.getLogger("momentum.example")
    with trace.get_tracer("tests").start_as_current_span("work") as span:
        log.info("step %s done", "outline", extra={"job_id": "j-1"})
        try:
            1 / 0
        except ZeroDivisionError:
            log.exception("step failed")
        print(trace.format_trace_id(span.get_span_context().trace_id))
        print(trace.format_span_id(span.get_span_context().span_id))
    log.debug("not at this level")
    log.warning("outside")
"""


def test_json_lines_carry_the_current_spans_ids_and_extras() -> None:
    done = run(
        LOG_INSIDE_A_SPAN,
        MOMENTUM_LOG_FORMAT="json",
        MOMENTUM_OTEL_EXPORTER="console",
        MOMENTUM_OTEL_TRACE_SAMPLE_RATIO="1",
    )
    trace_id, span_id = done.stdout.split()[:2]
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    step, failed, outside = lines
    assert step["message"] == "step outline done"
    assert (step["level"], step["logger"], step["job_id"]) == ("INFO", "momentum.example", "j-1")
    assert (step["trace_id"], step["span_id"]) == (trace_id, span_id)
    assert failed["span_id"] == span_id
    assert "ZeroDivisionError" in failed["exception"]
    assert outside["message"] == "outside"
    assert "trace_id" not in outside
    assert "request_id" not in outside


def test_text_lines_by_default() -> None:
    done = run(LOG_INSIDE_A_SPAN, MOMENTUM_LOG_FORMAT="text", MOMENTUM_OTEL_EXPORTER="none")
    assert " INFO momentum.example step outline done" in done.stderr
    assert not any(line.startswith("{") for line in done.stderr.splitlines())


def test_setup_tracing_samples_with_the_configured_ratio() -> None:
    done = run(
        """
        from opentelemetry import trace
        from momentum_domain.config import Settings
        from momentum_domain.kit.telemetry import setup_tracing

        setup_tracing(Settings(), "momentum-tests")
        spans = [trace.get_tracer("t").start_span("root") for _ in range(200)]
        print(sum(span.is_recording() for span in spans))
        """,
        MOMENTUM_OTEL_EXPORTER="console",
        MOMENTUM_OTEL_TRACE_SAMPLE_RATIO="0",
    )
    assert done.stdout.split()[-1] == "0"


def parent(sampled: bool) -> Context:
    context = SpanContext(
        trace_id=0x1234,
        span_id=0x99,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT),
    )
    return trace.set_span_in_context(NonRecordingSpan(context))


def test_roots_follow_the_ratio_and_children_their_parent() -> None:
    none, half, every = (
        TracerProvider(sampler=sampler(r)).get_tracer("t") for r in (0.0, 0.5, 1.0)
    )
    assert not any(none.start_span("root").is_recording() for _ in range(100))
    assert all(every.start_span("root").is_recording() for _ in range(100))
    kept = sum(half.start_span("root").is_recording() for _ in range(1000))
    assert 350 < kept < 650  # random trace ids: about half, never all or none
    # A request continuing a sampled trace (the generator's steps) is kept even at ratio 0,
    # and one continuing a dropped trace is dropped even at ratio 1.
    assert none.start_span("child", context=parent(sampled=True)).is_recording()
    assert not every.start_span("child", context=parent(sampled=False)).is_recording()


def test_database_redis_and_http_calls_are_traced_only_inside_something() -> None:
    every = TracerProvider(sampler=sampler(1.0)).get_tracer("t")
    # A broker poll or a periodic query on its own would be a trace of its own, all day long.
    assert not every.start_span("EVALSHA", kind=SpanKind.CLIENT).is_recording()
    assert every.start_span("job", kind=SpanKind.CONSUMER).is_recording()
    within = every.start_span("GET /courses", kind=SpanKind.SERVER)
    call = every.start_span(
        "SELECT", kind=SpanKind.CLIENT, context=trace.set_span_in_context(within)
    )
    assert call.is_recording()
