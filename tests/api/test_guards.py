"""Access is declared per route: public, authenticated, or admin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from litestar import Litestar
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.models import User
from tests.fixtures.app import Account

Client = httpx.AsyncClient


async def test_public_route_serves_anyone(client: Client) -> None:
    assert (await client.get("/auth/jwks.json")).status_code == 200


async def test_authenticated_route(client: Client, learner: Account) -> None:
    anonymous = await client.get("/me")
    assert anonymous.status_code == 401
    assert anonymous.json()["title"] == "Unauthorized"
    assert (await client.get("/me", headers=learner.headers)).status_code == 200


async def test_admin_route(client: Client, learner: Account, admin_account: Account) -> None:
    assert (await client.get("/admin/audit-logs")).status_code == 401
    forbidden = await client.get("/admin/audit-logs", headers=learner.headers)
    assert forbidden.status_code == 403
    assert forbidden.json()["detail"] == "This endpoint is for administrators."
    allowed = await client.get("/admin/audit-logs", headers=admin_account.headers)
    assert allowed.status_code == 200
    assert allowed.json()["total"] == 0


async def test_revoked_tokens_stop_working(
    client: Client, learner: Account, db: AsyncSession
) -> None:
    await db.execute(
        update(User)
        .where(User.id == learner.user.id)
        .values(tokens_valid_after=datetime.now(UTC) + timedelta(seconds=2))
    )
    await db.commit()
    response = await client.get("/me", headers=learner.headers)
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


async def test_erased_accounts_cannot_use_their_tokens(
    client: Client, learner: Account, db: AsyncSession
) -> None:
    await db.execute(
        update(User).where(User.id == learner.user.id).values(erased_at=datetime.now(UTC))
    )
    await db.commit()
    assert (await client.get("/me", headers=learner.headers)).status_code == 401


def test_every_guarded_route_is_declared_in_the_schema(app: Litestar) -> None:
    """Routes that need a token say so in the OpenAPI document."""
    schema = app.openapi_schema.to_schema()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            guarded = any(
                h.resolve_guards()
                for route in app.routes
                if route.path == path
                for h in getattr(route, "route_handlers", [])
                if method.upper() in h.http_methods
            )
            if guarded:
                assert operation.get("security"), f"{method.upper()} {path} lacks security"
