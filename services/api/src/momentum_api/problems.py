"""RFC 9457 problem details for every failure, with field-level errors for invalid input."""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from sqlalchemy.exc import IntegrityError

from momentum_domain.errors import MomentumError, ServiceUnavailable, TooManyRequests

logger = logging.getLogger(__name__)
PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://momentum.dev/problems/"
# msgspec reports an unknown field against the whole body; name the field itself.
_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]+)`")

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def problem(
    request: Request[Any, Any, Any],
    status: int,
    detail: str,
    *,
    title: str | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    title = title or _TITLES.get(status, "Error")
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + title.lower().replace(" ", "-"),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **(extra or {}),
    }
    return Response(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _field_errors(extra: Any) -> list[dict[str, Any]]:
    errors = extra if isinstance(extra, list) else []
    fields = []
    for item in errors:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", ""))
        unknown = _UNKNOWN_FIELD.search(message)
        fields.append(
            {
                "field": unknown.group(1) if unknown else item.get("key") or "",
                "source": item.get("source") or "body",
                "message": message,
            }
        )
    return fields


def handle_domain_error(request: Request[Any, Any, Any], exc: MomentumError) -> Response[Any]:
    retry_after = exc.retry_after if isinstance(exc, TooManyRequests | ServiceUnavailable) else None
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    extra = {k: v for k, v in exc.extra.items() if k != "retry_after"}
    return problem(
        request, exc.status_code, exc.detail, title=exc.title, extra=extra, headers=headers
    )


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, ValidationException):
        errors = _field_errors(exc.extra)
        detail = (
            "The request is invalid: "
            + "; ".join(f"{e['field'] or e['source']}: {e['message']}" for e in errors)
            if errors
            else str(exc.detail)
        )
        return problem(request, 400, detail, title="Invalid request", extra={"errors": errors})
    if exc.status_code >= 500:
        logger.error("server error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(request, exc.status_code, str(exc.detail), headers=exc.headers)


def handle_integrity_error(request: Request[Any, Any, Any], exc: IntegrityError) -> Response[Any]:
    # Services translate the conflicts they expect; this is the safety net for the rest.
    logger.warning("integrity error on %s: %s", request.url.path, exc.orig)
    return problem(request, 409, "The request conflicts with the current state of the resource.")


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(request, HTTP_500_INTERNAL_SERVER_ERROR, "An unexpected error occurred.")


exception_handlers: dict[int | type[Exception], Any] = {
    MomentumError: handle_domain_error,
    HTTPException: handle_http_exception,
    IntegrityError: handle_integrity_error,
    Exception: handle_unexpected,
}

__all__ = ["PROBLEM_MEDIA_TYPE", "exception_handlers", "problem"]
