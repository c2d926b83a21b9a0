from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from momentum_api.identity.service import Identity
from momentum_domain.errors import Unauthorized


class BearerTokenMiddleware(AbstractAuthenticationMiddleware):
    """Authenticates a request that carries a bearer token; a request without one continues
    anonymously and the route's guard decides. A bad token is always a 401."""

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        header = connection.headers.get("authorization")
        if not header:
            return AuthenticationResult(user=None, auth=None)
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Use 'Authorization: Bearer <access token>'.")
        identity: Identity = connection.app.state.identity
        principal = await identity.authenticate(token.strip())
        return AuthenticationResult(user=principal, auth=token)
