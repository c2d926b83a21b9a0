"""Per-IP and per-user request limits in Redis: 429 with Retry-After."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from momentum_api.app import create_app
from momentum_api.identity.service import Identity
from momentum_domain.config import Settings
from tests.fixtures.app import Account, serve

Client = httpx.AsyncClient


@pytest.fixture
async def limited(settings: Settings, reference_rows: object) -> AsyncIterator[Client]:
    app = create_app(
        settings.model_copy(
            update={
                "rate_limit_default": "5/60",
                "rate_limit_admin": "2/60",
                "rate_limit_signin": "3/60",
            }
        )
    )
    async with serve(app) as client:
        yield client


def _token_for(client: Client, account: Account) -> dict[str, str]:
    identity: Identity = client.app.state.identity
    return {"Authorization": f"Bearer {identity.issue_access_token(account.user)}"}


async def test_anonymous_callers_are_limited_per_ip(limited: Client) -> None:
    statuses = [(await limited.get("/categories")).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    blocked = await limited.get("/courses")
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["retry-after"]) <= 60
    assert blocked.json()["title"] == "Too many requests"
    # Health checks are never limited: the load balancer must always get through.
    assert (await limited.get("/health/live")).status_code == 200


async def test_signed_in_users_have_their_own_budget(
    limited: Client, learner: Account, admin_account: Account
) -> None:
    for _ in range(5):
        await limited.get("/categories")
    assert (await limited.get("/categories")).status_code == 429
    learner_headers = _token_for(limited, learner)
    assert (await limited.get("/categories", headers=learner_headers)).status_code == 200


async def test_admin_endpoints_are_stricter(limited: Client, admin_account: Account) -> None:
    headers = _token_for(limited, admin_account)
    statuses = [(await limited.get("/admin/users", headers=headers)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


async def test_sign_in_is_stricter(limited: Client, learner: Account) -> None:
    body = {"email": learner.user.email, "password": learner.password}
    statuses = [(await limited.post("/auth/sign-in", json=body)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
