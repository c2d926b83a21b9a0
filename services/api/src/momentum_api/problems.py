"""RFC 9457 problem details for every failure, with field-level errors for invalid input."""

from __future__ import annotations

import ast
import logging
import re
from typing import Any

import asyncpg
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from momentum_domain.errors import MomentumError, ServiceUnavailable, TooManyRequests

logger = logging.getLogger(__name__)
PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://momentum.dev/problems/"
# A dependency's restart takes seconds; clients retrying sooner only add load. Every 503 says
# when to come back unless its cause knows better.
RETRY_AFTER_SECONDS = 5
# What the server says while it stops, starts, or has no room: the database, not the request.
_DATABASE_DOWN = (
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.PostgresConnectionError,  # class 08: ConnectionDoesNotExist, ConnectionFailure, ...
)
# msgspec reports a missing or unknown field against the object holding it ("data" for the
# body); name the field itself. Messages take msgspec's style ("Expected `str`, got `int`"),
# without the field's name, which is in "field".
_OBJECT_FIELD = re.compile(r"^Object (missing required|contains unknown) field `([^`]+)`")
_FIELD_MESSAGES = {
    "missing required": "Missing required value",
    "contains unknown": "Unknown field",
}
# Litestar's own wording for a missing parameter, which carries no field errors.
_MISSING_PARAMETER = re.compile(r"^Missing required (\w+) parameter '([^']+)'")
# msgspec quotes a pattern with repr(), doubling every backslash.
_QUOTED_PATTERN = re.compile(r"matching regex ('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")")

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
    if status == 503:
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS), **(headers or {})}
    return Response(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _field_error(item: dict[str, Any]) -> dict[str, Any]:
    message = str(item.get("message", ""))
    key = str(item.get("key") or "")
    field = "" if key == "data" else key
    named = _OBJECT_FIELD.search(message)
    if named:
        field = f"{field}.{named.group(2)}" if field else named.group(2)
        message = _FIELD_MESSAGES[named.group(1)]
    pattern = _QUOTED_PATTERN.search(message)
    if pattern:
        regex = ast.literal_eval(pattern.group(1))
        message = (
            message[: pattern.start()] + f"matching regex `{regex}`" + message[pattern.end() :]
        )
    return {"field": field, "source": item.get("source") or "body", "message": message}


def _field_errors(exc: ValidationException) -> list[dict[str, Any]]:
    if isinstance(exc.extra, list):
        return [_field_error(item) for item in exc.extra if isinstance(item, dict)]
    missing = _MISSING_PARAMETER.search(str(exc.detail))
    if missing:
        return [
            {
                "field": missing.group(2),
                "source": missing.group(1),
                "message": _FIELD_MESSAGES["missing required"],
            }
        ]
    return []


def handle_domain_error(request: Request[Any, Any, Any], exc: MomentumError) -> Response[Any]:
    retry_after = exc.retry_after if isinstance(exc, TooManyRequests | ServiceUnavailable) else None
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    extra = {k: v for k, v in exc.extra.items() if k != "retry_after"}
    return problem(
        request, exc.status_code, exc.detail, title=exc.title, extra=extra, headers=headers
    )


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, ValidationException):
        errors = _field_errors(exc)
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


def database_unreachable(exc: BaseException) -> bool:
    """Whether the error means PostgreSQL could not be reached (down, restarting, refusing new
    connections, or the connection died): weather, not a bug. A bad statement is not."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (PoolTimeoutError, *_DATABASE_DOWN)):
            return True
        # SQLAlchemy invalidates the pool on a disconnect, so the next checkout reconnects.
        if isinstance(error, DBAPIError) and error.connection_invalidated:
            return True
        error = error.__cause__ or error.__context__
    # Connecting (through the engine's async_creator) raises the socket's error unwrapped:
    # refused, no socket file, or timed out (TimeoutError is an OSError).
    return isinstance(exc, OSError) and _raised_by_database_driver(exc)


def _raised_by_database_driver(exc: BaseException) -> bool:
    traceback = exc.__traceback__
    while traceback is not None:
        module = traceback.tb_frame.f_globals.get("__name__", "")
        if module.startswith(("asyncpg.", "sqlalchemy.pool", "sqlalchemy.engine")):
            return True
        traceback = traceback.tb_next
    return False


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if database_unreachable(exc):
        # One line per request, not a traceback: an outage would otherwise flood the log.
        logger.warning(
            "database unavailable on %s %s: %s", request.method, request.url.path, _summary(exc)
        )
        return problem(
            request,
            503,
            "The database is unavailable; try again in a few seconds.",
        )
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(request, HTTP_500_INTERNAL_SERVER_ERROR, "An unexpected error occurred.")


def _summary(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    return f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"


exception_handlers: dict[int | type[Exception], Any] = {
    MomentumError: handle_domain_error,
    HTTPException: handle_http_exception,
    IntegrityError: handle_integrity_error,
    Exception: handle_unexpected,
}

__all__ = ["PROBLEM_MEDIA_TYPE", "exception_handlers", "problem"]
