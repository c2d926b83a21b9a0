"""One access log line per request, and the request id every log line of the request carries."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from momentum_domain.kit.logging_setup import request_id

logger = logging.getLogger("momentum_api.access")

REQUEST_ID_HEADER = b"x-request-id"
# A caller's own id is kept only when it is plainly an id: it ends up in every log line.
_ACCEPTED_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")


def route(scope: Scope) -> str:
    return scope.get("path_template") or "unmatched"


class AccessLog:
    """Wraps the whole application (outside the router, so unmatched routes and errors raised
    by middleware are logged with the status the client got). Logs the method, the route
    template (never the raw path or query string, which may hold secrets), the status, the
    duration, the signed-in user's id and the request id; answers with ``X-Request-Id``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        given = next((v for k, v in scope["headers"] if k == REQUEST_ID_HEADER), None)
        rid = (
            given.decode()
            if given is not None and _ACCEPTED_ID.fullmatch(given)
            else uuid.uuid4().hex
        )
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500  # what the server answers if the application fails before responding
        span: dict[str, str] = {}

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
                # Sent from inside the request's span (when traced): the line names its trace,
                # and the span is named after the route template, not the raw path the
                # tracing middleware knew before routing (a name per course slug, or per path
                # a scanner tries, would make every request a trace group of its own).
                current = trace.get_current_span()
                context = current.get_span_context()
                if context.is_valid:
                    span["trace_id"] = trace.format_trace_id(context.trace_id)
                    span["span_id"] = trace.format_span_id(context.span_id)
                    if getattr(current, "kind", None) is SpanKind.SERVER:
                        current.update_name(f"{method} {route(scope)}")
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            fields: dict[str, Any] = {
                "http_method": method,
                "route": route(scope),
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "request_id": rid,
                **span,
            }
            user = scope.get("user")
            if user is not None and (user_id := getattr(user, "id", None)) is not None:
                fields["user_id"] = str(user_id)
            logger.info(
                "%s %s %d %.1fms",
                fields["http_method"],
                fields["route"],
                status,
                fields["duration_ms"],
                extra=fields,
            )
            request_id.reset(token)
