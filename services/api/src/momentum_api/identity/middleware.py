from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import Message, Receive, Scope, Send

from momentum_api.identity.service import Identity
from momentum_domain.errors import Unauthorized

NO_STORE = (b"cache-control", b"no-store")


class BearerTokenMiddleware(AbstractAuthenticationMiddleware):
    """Authenticates a request that carries a bearer token; a request without one continues
    anonymously and the route's guard decides. A bad token is always a 401.

    What answers a request with a bearer token is the caller's own (their account, progress,
    payments...): no cache may keep it, so its response is ``Cache-Control: no-store`` unless the
    handler chose its caching itself. (The routes that hand out tokens, to callers without one,
    say no-store on their controller.)"""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if any(name == b"authorization" for name, _ in scope["headers"]):
            send = _no_store_by_default(send)
        await super().__call__(scope, receive, send)

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        header = connection.headers.get("authorization")
        if not header:
            return AuthenticationResult(user=None, auth=None)
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("Use 'Authorization: Bearer <access token>'.")
        identity: Identity = connection.app.state.identity
        principal = await identity.authenticate(token)
        return AuthenticationResult(user=principal, auth=token)


def _no_store_by_default(send: Send) -> Send:
    async def send_no_store(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            if not any(name.lower() == b"cache-control" for name, _ in headers):
                message = {**message, "headers": [*headers, NO_STORE]}
        await send(message)

    return send_no_store
