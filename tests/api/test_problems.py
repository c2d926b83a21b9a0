"""Bad input gets a clear 4xx problem body (RFC 9457) and writes nothing."""

from __future__ import annotations

import httpx
from litestar import Litestar, get
from litestar.params import FromQuery
from litestar.testing import create_test_client
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_api.problems import exception_handlers
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
    assert body["errors"] == [{"field": "role", "source": "body", "message": "Unknown field"}]
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
    body = _is_problem(response, 400)
    # msgspec reports it against the body ("data"); the field is the one missing.
    assert body["errors"] == [
        {"field": "password", "source": "body", "message": "Missing required value"}
    ]
    assert body["detail"] == "The request is invalid: password: Missing required value"


async def test_a_pattern_mismatch_shows_the_pattern_as_written(client: Client) -> None:
    response = await client.post(
        "/auth/sign-up",
        json={"email": "not-an-email", "password": "a long passphrase", "name": "A"},
    )
    (error,) = _is_problem(response, 400)["errors"]
    assert error["field"] == "email"
    # One backslash per escape, as in the schema's pattern, not repr()'s two.
    part = "[^@\\s\\x00-\\x20\\x7f-\\x9f]+"
    assert error["message"] == f"Expected `str` matching regex `^{part}@{part}\\.{part}$`"


async def test_a_wrong_type_names_the_field(client: Client) -> None:
    response = await client.post(
        "/auth/sign-up", json={"email": "d@example.com", "password": 12, "name": "D"}
    )
    body = _is_problem(response, 400)
    assert body["errors"] == [
        {"field": "password", "source": "body", "message": "Expected `str`, got `int`"}
    ]


def test_a_missing_parameter_speaks_like_the_other_errors() -> None:
    """Litestar words a missing required parameter itself, without field errors."""

    @get("/things", sync_to_thread=False)
    def things(colour: FromQuery[str]) -> str:
        return colour

    with create_test_client([things], exception_handlers=exception_handlers) as test_client:
        response = test_client.get("/things")
    body = _is_problem(response, 400)
    assert body["errors"] == [
        {"field": "colour", "source": "query", "message": "Missing required value"}
    ]
    assert body["detail"] == "The request is invalid: colour: Missing required value"


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


async def test_documented_parameter_limits_are_enforced(client: Client) -> None:
    """Each limit the OpenAPI document states for a parameter is a 400 naming it."""
    course = "a" * 201
    for path, field, source, headers in [
        ("/courses?q=" + "a" * 201, "q", "query", {}),
        ("/courses?q=", "q", "query", {}),
        ("/courses?limit=101", "limit", "query", {}),
        ("/courses?offset=100001", "offset", "query", {}),
        (f"/courses/{course}", "ref", "path", {}),
        ("/courses/some-course/lessons/22", "day", "path", {}),
    ]:
        body = _is_problem(await client.get(path, headers=headers), 400)
        assert [(e["field"], e["source"]) for e in body["errors"]] == [(field, source)], path
    assert (await client.get("/courses?q=" + "a" * 200)).status_code == 200
