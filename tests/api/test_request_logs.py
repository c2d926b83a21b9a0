"""JSON log lines name the request's trace, span and request id; one access line per request
(route template, status, duration, user), never its credentials; SQL and Redis calls made while
serving a request are spans of its trace."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from momentum_api.app import create_app
from momentum_domain.config import Settings
from momentum_domain.kit.logging_setup import JsonFormatter
from momentum_domain.kit.telemetry import setup_tracing
from tests.fixtures.app import Account, MakeCourse, serve


class JsonLines(logging.Handler):
    """Formats each record as it is emitted (inside the request's context), as CloudWatch
    would receive it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def entries(self, logger: str) -> list[dict[str, object]]:
        return [e for e in map(json.loads, self.lines) if e["logger"] == logger]


@contextmanager
def json_lines() -> Iterator[JsonLines]:
    handler = JsonLines()
    api = logging.getLogger("momentum_api")
    level = api.level
    api.addHandler(handler)
    api.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        api.removeHandler(handler)
        api.setLevel(level)


def traced(settings: Settings) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    # Process-wide, as in tests/pipeline: the first call installs the provider, later ones add
    # their processor to it.
    setup_tracing(settings, "momentum-tests", processor=SimpleSpanProcessor(exporter))
    return exporter


def request_span(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    (span,) = [s for s in exporter.get_finished_spans() if s.name == name]
    return span


def ids(span: ReadableSpan) -> tuple[str, str]:
    return trace.format_trace_id(span.context.trace_id), trace.format_span_id(span.context.span_id)


async def test_a_line_logged_while_serving_a_request_names_its_trace_and_request(
    settings: Settings, make_course: MakeCourse
) -> None:
    exporter = traced(settings)
    await make_course("Logged")
    # Redis refuses connections: the rate limiter logs that it is not enforcing, mid-request.
    app = create_app(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))
    with json_lines() as logs:
        async with serve(app) as client:
            response = await client.get("/courses", headers={"X-Request-Id": "req-42"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-42"
    trace_id, span_id = ids(request_span(exporter, "GET /courses"))
    (degraded,) = logs.entries("momentum_api.ratelimit")
    assert "not enforcing" in str(degraded["message"])
    assert degraded["level"] == "WARNING"
    assert (degraded["trace_id"], degraded["span_id"]) == (trace_id, span_id)
    assert degraded["request_id"] == "req-42"


async def test_one_access_line_per_request_with_route_status_and_user_never_the_token(
    settings: Settings, learner: Account, make_course: MakeCourse
) -> None:
    exporter = traced(settings)
    course = await make_course("Access logged")
    with json_lines() as logs:
        async with serve(create_app(settings)) as client:
            detail = await client.get(
                f"/courses/{course.slug}?token=secret-in-query", headers=learner.headers
            )
            missing = await client.get("/no/such/route")
            refused = await client.get("/courses", headers={"Authorization": "Bearer forged"})
    assert detail.status_code == 200
    assert missing.status_code == 404
    assert refused.status_code == 401

    first, second, third = logs.entries("momentum_api.access")
    assert len(logs.entries("momentum_api.access")) == 3
    assert first["http_method"] == "GET"
    assert first["route"] == "/courses/{ref}"
    assert first["status"] == 200
    assert isinstance(first["duration_ms"], float)
    assert first["duration_ms"] > 0
    assert first["user_id"] == str(learner.user.id)
    assert first["request_id"] == detail.headers["x-request-id"]
    assert (first["trace_id"], first["span_id"]) == ids(
        request_span(exporter, "GET /courses/{ref}")
    )
    assert (second["route"], second["status"]) == ("unmatched", 404)
    assert (third["route"], third["status"], "user_id" in third) == ("/courses", 401, False)
    # Ids are generated when the caller sends none, one per request.
    assert len({first["request_id"], second["request_id"], third["request_id"]}) == 3
    text = "\n".join(logs.lines)
    assert learner.token not in text
    assert "forged" not in text
    assert "secret-in-query" not in text
    assert course.slug not in text  # the template, not the raw path
    # The request spans are named after the template too.
    names = {s.name for s in exporter.get_finished_spans()}
    assert {"GET unmatched", "GET /courses"} <= names
    assert not any(course.slug in name for name in names)


async def test_sql_and_redis_calls_are_spans_of_the_request(
    settings: Settings, make_course: MakeCourse
) -> None:
    exporter = traced(settings)
    await make_course("Traced")
    async with serve(create_app(settings)) as client:
        assert (await client.get("/courses?q=traced")).status_code == 200
    request = request_span(exporter, "GET /courses")
    in_request = [
        s
        for s in exporter.get_finished_spans()
        if s.context.trace_id == request.context.trace_id and s is not request
    ]
    systems = {(s.attributes or {}).get("db.system") for s in in_request}
    assert "postgresql" in systems
    assert "redis" in systems
    sql = next(s for s in in_request if (s.attributes or {}).get("db.system") == "postgresql")
    assert "SELECT" in str((sql.attributes or {}).get("db.statement"))
