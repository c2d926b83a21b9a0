"""Route access is declared once, with one of these guards on the controller or the route.
Routes without a guard are public."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import CacheControlHeader
from litestar.handlers.base import BaseRouteHandler

from momentum_domain.errors import Forbidden, Unauthorized

# On the controllers that hand out tokens: no cache (a browser's, a proxy's) may keep them.
# Responses to requests with a bearer token get the same (momentum_api.identity.middleware).
NO_STORE = CacheControlHeader(no_store=True)


def authenticated(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if connection.scope.get("user") is None:
        raise Unauthorized("Sign in to use this endpoint: send 'Authorization: Bearer <token>'.")


def admin(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    authenticated(connection, handler)
    if not connection.user.is_admin:
        raise Forbidden("This endpoint is for administrators.")
