"""``http.server.request.duration`` for every request (momentum_domain.metric_names): its route
template, method and status, and how long the application took to answer it."""

from __future__ import annotations

import time

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry.metrics import Meter

from momentum_domain import metric_names
from momentum_domain.kit.telemetry import create_histogram

# OpenTelemetry's HTTP conventions: other methods count as "_OTHER" (a scanner's made-up
# methods must not each become a series).
KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)
# Paths no route matched (404, 405 before routing): one value, not one per path tried.
UNMATCHED = "unmatched"


class RequestMetrics:
    """Wraps the whole application (outside the router, like the access log), so unmatched
    paths and errors raised by middleware are measured with the status the client got.
    Installed only when metrics are on: with them off, requests pay nothing for it."""

    def __init__(self, app: ASGIApp, meter: Meter) -> None:
        self.app = app
        self._duration = create_histogram(meter, metric_names.HTTP_SERVER_REQUEST_DURATION)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers if the application fails before responding

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            method = scope["method"]
            self._duration.record(
                time.perf_counter() - started,
                {
                    # The router sets the template on the scope once a route matched.
                    "http.route": scope.get("path_template") or UNMATCHED,
                    "http.request.method": method if method in KNOWN_METHODS else "_OTHER",
                    "http.response.status_code": status,
                },
            )
