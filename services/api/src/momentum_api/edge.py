"""What every response carries and every GET route also answers: security headers, and HEAD.

Both wrap the whole application (inside the access log), so they hold for every route, error
and unmatched path alike, with no per-route declaration to forget."""

from __future__ import annotations

from collections.abc import Sequence

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from momentum_api.origin import IPNetwork, came_over_tls

# The API answers JSON and media, never a page to frame or to sniff into HTML. Only the API
# docs (/schema) are HTML: their scripts come from a CDN, so only JSON gets a CSP that allows
# nothing at all; every response refuses to be framed.
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
FRAME_ANCESTORS = b"frame-ancestors 'none'"
JSON_POLICY = b"default-src 'none'; " + FRAME_ANCESTORS
# A year, the value HSTS preload lists ask for. Sent only over TLS, as RFC 6797 requires.
HSTS = b"max-age=31536000; includeSubDomains"


class SecurityHeaders:
    def __init__(self, app: ASGIApp, trusted_proxies: Sequence[IPNetwork]) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        tls = came_over_tls(scope, self.trusted_proxies)

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
                policy = JSON_POLICY if b"json" in content_type else FRAME_ANCESTORS
                added = [*SECURITY_HEADERS, (b"content-security-policy", policy)]
                if tls:
                    added.append((b"strict-transport-security", HSTS))
                message["headers"] = headers + [h for h in added if h[0] not in present]
            await send(message)

        await self.app(scope, receive, send_secured)


class HeadAsGet:
    """HEAD wherever GET is served (RFC 9110: the same status and headers, no body): the app
    answers it as the GET, and the body is dropped on the way out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        scope["method"] = "GET"  # in place: the access log reads the route from this scope

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        try:
            await self.app(scope, receive, send_headers_only)
        finally:
            scope["method"] = "HEAD"


__all__ = ["HeadAsGet", "SecurityHeaders"]
