"""Every response carries the security headers (HSTS only when the client's connection was TLS,
at this server or at a trusted proxy), and HEAD is answered wherever GET is."""

from __future__ import annotations

import ipaddress

import httpx
from litestar import Litestar
from litestar.types import Receive, Scope, Send

from momentum_api.edge import SecurityHeaders
from momentum_api.origin import IPNetwork
from tests.fixtures.app import AppClient, MakeCourse

Client = httpx.AsyncClient
ALB = "10.20.1.7"
VPC: list[IPNetwork] = [ipaddress.ip_network("10.20.0.0/16")]


def assert_secured(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "strict-transport-security" not in response.headers  # plain HTTP here


async def test_every_kind_of_response_is_secured(client: AppClient) -> None:
    responses = [
        await client.get("/categories"),  # 200
        await client.get("/no/such/route"),  # 404 from the router
        await client.post("/auth/sign-in", json={}),  # 400 from validation
        await client.get("/me"),  # 401 from the authentication middleware
        await client.delete("/categories"),  # 405
        await client.get("/health/live"),
        await client.get("/schema/openapi.json"),
    ]
    for response in responses:
        assert_secured(response)
        assert response.headers["content-security-policy"] == (
            "default-src 'none'; frame-ancestors 'none'"
        ), response.request.url


async def test_the_docs_page_keeps_its_scripts(client: AppClient) -> None:
    """The docs page loads its renderer from a CDN: it is not framed, but not locked down."""
    response = await client.get("/schema")
    assert response.status_code == 200
    assert_secured(response)
    assert response.headers["content-security-policy"] == "frame-ancestors 'none'"


async def test_hsts_over_tls(client: AppClient, app: Litestar) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver.local") as tls:
        response = await tls.get("/categories")
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _get(peer: str, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=SecurityHeaders(_ok, VPC), client=(peer, 43210))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.local") as c:
        return await c.get("/", headers=headers)


async def test_hsts_only_when_a_trusted_proxy_says_tls() -> None:
    hsts = "strict-transport-security"
    assert hsts in (await _get(ALB, {"X-Forwarded-Proto": "https"})).headers
    assert hsts not in (await _get(ALB, {"X-Forwarded-Proto": "http"})).headers
    assert hsts not in (await _get(ALB, {})).headers
    # The client wrote the left value; the load balancer appended the right one.
    assert hsts not in (await _get(ALB, {"X-Forwarded-Proto": "https, http"})).headers
    # A caller that is not the load balancer is not believed.
    assert hsts not in (await _get("192.0.2.50", {"X-Forwarded-Proto": "https"})).headers


async def test_head_wherever_get_is_served(
    client: AppClient, make_course: MakeCourse, app: Litestar
) -> None:
    course = await make_course()
    for path in ("/categories", "/courses", f"/courses/{course.slug}", "/health/live"):
        get = await client.get(path)
        head = await client.head(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b""
        for name in ("content-type", "content-length", "etag", "cache-control"):
            assert head.headers.get(name) == get.headers.get(name), (path, name)
        assert_secured(head)
    # Whatever a GET would answer, a HEAD answers too.
    assert (await client.head("/no/such/route")).status_code == 404
    assert (await client.head("/me")).status_code == 401
    assert (await client.head(f"/courses/{course.slug}/lessons/99")).status_code == 400


async def test_head_is_logged_as_head(client: AppClient, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level("INFO", logger="momentum_api.access")
    await client.head("/categories")
    [line] = [r for r in caplog.records if r.name == "momentum_api.access"]
    assert line.http_method == "HEAD"
    assert line.route == "/categories"
