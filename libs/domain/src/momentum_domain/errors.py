"""One error hierarchy for the platform: each error knows the HTTP status it maps to."""

from __future__ import annotations

from typing import Any


class MomentumError(Exception):
    """Base class of every expected failure. The API turns it into an RFC 9457 problem body."""

    status_code = 500
    title = "Internal error"

    def __init__(self, detail: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}


class BadRequest(MomentumError):
    status_code = 400
    title = "Bad request"


class Unauthorized(MomentumError):
    status_code = 401
    title = "Unauthorized"


class Forbidden(MomentumError):
    status_code = 403
    title = "Forbidden"


class NotFound(MomentumError):
    status_code = 404
    title = "Not found"


class Conflict(MomentumError):
    status_code = 409
    title = "Conflict"


class PayloadTooLarge(MomentumError):
    status_code = 413
    title = "Request body too large"


class Unprocessable(MomentumError):
    status_code = 422
    title = "Unprocessable content"


class TooManyRequests(MomentumError):
    status_code = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, extra={"retry_after": retry_after})
        self.retry_after = retry_after


class ServiceUnavailable(MomentumError):
    status_code = 503
    title = "Service unavailable"

    def __init__(self, detail: str, *, retry_after: int | None = None) -> None:
        """``retry_after``, when known, becomes the response's Retry-After header."""
        super().__init__(detail)
        self.retry_after = retry_after
