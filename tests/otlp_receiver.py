"""An OTLP/gRPC metrics receiver in the test process: what a collector sidecar would receive.

The services export to it exactly as they do to the collector in a task (their OTLP exporter,
over gRPC, to ``MOMENTUM_OTEL_ENDPOINT``); it keeps every data point it is sent, with the
metric's name, unit, description, type and the sending service's ``service.name``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as service
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2_grpc import (
    MetricsServiceServicer,
    add_MetricsServiceServicer_to_server,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import (
    TraceServiceServicer,
    add_TraceServiceServicer_to_server,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality


@dataclass(frozen=True)
class Point:
    service: str
    scope: str
    name: str
    unit: str
    description: str
    # "gauge", or "sum" with its temporality ("delta"/"cumulative") and monotonicity.
    kind: str
    temporality: str | None
    monotonic: bool | None
    attributes: dict[str, Any]
    value: float


def _value(any_value: AnyValue) -> Any:
    field = any_value.WhichOneof("value")
    return getattr(any_value, field) if field else None


class _TraceSink(TraceServiceServicer):
    """Accepts the spans the processes send to the same endpoint, unread."""

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - the gRPC method name
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpReceiver(MetricsServiceServicer):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._points: list[Point] = []
        self._server: grpc.Server | None = None
        self.endpoint = ""

    # ---- the gRPC services --------------------------------------------------------------

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - the gRPC method name
        points = []
        for resource_metrics in request.resource_metrics:
            resource = {a.key: _value(a.value) for a in resource_metrics.resource.attributes}
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    points += _points(resource["service.name"], scope_metrics.scope.name, metric)
        with self._lock:
            self._points += points
        return service.ExportMetricsServiceResponse()

    # ---- for tests ----------------------------------------------------------------------

    def points(self, name: str | None = None, *, service_name: str | None = None) -> list[Point]:
        with self._lock:
            return [
                p
                for p in self._points
                if (name is None or p.name == name)
                and (service_name is None or p.service == service_name)
            ]

    def start(self) -> None:
        # Both services on one port, as on a collector's OTLP receiver: a process exports its
        # spans to the same endpoint as its metrics.
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        add_MetricsServiceServicer_to_server(self, server)
        add_TraceServiceServicer_to_server(_TraceSink(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server
        self.endpoint = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None)


def _points(service_name: str, scope: str, metric: Any) -> list[Point]:
    kind = metric.WhichOneof("data")
    data = getattr(metric, kind)
    temporality = monotonic = None
    if kind == "sum":
        temporality = {
            AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA: "delta",
            AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE: "cumulative",
        }[data.aggregation_temporality]
        monotonic = data.is_monotonic
    elif kind != "gauge":
        raise AssertionError(f"{metric.name}: unexpected metric type {kind}")
    return [
        Point(
            service=service_name,
            scope=scope,
            name=metric.name,
            unit=metric.unit,
            description=metric.description,
            kind=kind,
            temporality=temporality,
            monotonic=monotonic,
            attributes={a.key: _value(a.value) for a in point.attributes},
            value=point.as_double if point.WhichOneof("value") == "as_double" else point.as_int,
        )
        for point in data.data_points
    ]


def running_receiver() -> Iterator[OtlpReceiver]:
    """For a fixture: a started receiver, stopped afterwards."""
    receiver = OtlpReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
