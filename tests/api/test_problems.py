"""Bad input gets a clear 4xx problem body (RFC 9457) and writes nothing."""

from __future__ import annotations

import httpx
from litestar import Litestar
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.models import User

Client = httpx.AsyncClient


def _is_problem(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail", "instance"} <= body.keys()
    return body


async def test_unknown_fields_are_rejected(client: Client, db: AsyncSession) -> None:
    response = await client.post(
        "/auth/sign-up",
        json={
            "email": "a@example.com",
            "password": "a long passphrase",
            "name": "A",
            "role": "ADMIN",
        },
    )
    body = _is_problem(response, 400)
    assert body["errors"][0]["field"] == "role"
    assert "unknown field" in body["errors"][0]["message"]
    assert await db.scalar(select(func.count()).select_from(User)) == 0


async def test_field_errors_name_the_field(client: Client) -> None:
    response = await client.post(
        "/auth/sign-up",
        json={"email": "not-an-email", "password": "a long passphrase", "name": "A"},
    )
    body = _is_problem(response, 400)
    assert body["errors"][0]["field"] == "email"


async def test_short_password(client: Client) -> None:
    response = await client.post(
        "/auth/sign-up", json={"email": "b@example.com", "password": "short", "name": "B"}
    )
    assert _is_problem(response, 400)["errors"][0]["field"] == "password"


async def test_missing_fields(client: Client) -> None:
    response = await client.post("/auth/sign-up", json={"email": "c@example.com"})
    _is_problem(response, 400)


async def test_malformed_json(client: Client) -> None:
    response = await client.post(
        "/auth/sign-in", content=b'{"email": ', headers={"Content-Type": "application/json"}
    )
    _is_problem(response, 400)


async def test_body_too_large(client: Client, app: Litestar) -> None:
    limit = app.state.settings.api_max_body_bytes
    response = await client.post(
        "/auth/sign-in",
        content=b'{"email": "' + b"a" * (limit + 10) + b'"}',
        headers={"Content-Type": "application/json"},
    )
    _is_problem(response, 413)


async def test_unknown_route(client: Client) -> None:
    body = _is_problem(await client.get("/no/such/thing"), 404)
    assert body["instance"] == "/no/such/thing"


async def test_wrong_method(client: Client) -> None:
    _is_problem(await client.delete("/auth/jwks.json"), 405)


async def test_bad_query_parameter(client: Client, admin_account) -> None:  # type: ignore[no-untyped-def]
    response = await client.get("/admin/audit-logs?limit=100000", headers=admin_account.headers)
    body = _is_problem(response, 400)
    assert body["errors"][0]["field"] == "limit"
