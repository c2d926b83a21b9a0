"""Every request the API answers is measured in ``http.server.request.duration`` with its route
template (never the raw path), method and status, through the app ``create_app`` builds."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader

from momentum_api.app import create_app
from momentum_domain import metric_names
from momentum_domain.config import Settings
from momentum_domain.kit.telemetry import DELTA_SUMS, setup_metrics
from tests.fixtures.app import MakeCourse, serve

SPEC = metric_names.HTTP_SERVER_REQUEST_DURATION


_readers: list[InMemoryMetricReader] = []


def _reader(settings: Settings) -> InMemoryMetricReader:
    """The process's meter provider, reading into memory (installed once per process, as the
    services do; if another were installed first, this reader would see no points)."""
    if not _readers:
        reader = InMemoryMetricReader(preferred_temporality=DELTA_SUMS)
        provider = setup_metrics(settings, "momentum-tests", reader=reader)
        assert isinstance(provider, MeterProvider)
        _readers.append(reader)
    return _readers[0]


def _points(reader: InMemoryMetricReader) -> list[HistogramDataPoint]:
    """The request histogram's points since the previous call (delta temporality)."""
    data = reader.get_metrics_data()
    points: list[HistogramDataPoint] = []
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == SPEC.name:
                    assert (metric.unit, metric.description) == (SPEC.unit, SPEC.description)
                    points.extend(metric.data.data_points)  # type: ignore[arg-type]
    return points


async def test_each_request_is_measured_by_route_template_method_and_status(
    settings: Settings, make_course: MakeCourse
) -> None:
    reader = _reader(settings)
    course = await make_course("Request metrics")
    async with serve(create_app(settings)) as client:
        _points(reader)  # start from here: earlier tests' requests are not this test's
        for _ in range(2):
            assert (await client.get(f"/courses/{course.slug}")).status_code == 200
        assert (await client.get(f"/no/such/{course.slug}")).status_code == 404
        assert (await client.request("BREW", "/courses")).status_code == 405
        refused = await client.get("/courses", headers={"Authorization": "Bearer forged"})
        assert refused.status_code == 401
        points = _points(reader)

    by_attributes = {
        (
            p.attributes["http.route"],
            p.attributes["http.request.method"],
            p.attributes["http.response.status_code"],
        ): p
        for p in points
        if p.attributes is not None
    }
    assert set(by_attributes) == {
        ("/courses/{ref}", "GET", 200),
        ("unmatched", "GET", 404),
        ("unmatched", "_OTHER", 405),
        ("/courses", "GET", 401),
    }
    assert all(set(p.attributes or {}) == set(SPEC.attributes) for p in points)
    detail = by_attributes[("/courses/{ref}", "GET", 200)]
    assert detail.count == 2
    # Seconds, as the table says: a request through ASGI in this process takes well under one.
    assert 0 < detail.min <= detail.max < 5
    assert detail.explicit_bounds[0] == 0.005
