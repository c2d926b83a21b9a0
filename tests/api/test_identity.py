"""The local identity provider's flows, over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
from litestar import Litestar
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_api.app import create_app
from momentum_domain.config import Settings
from momentum_domain.models import AuditLog, RefreshToken, User
from tests.fixtures.app import Account, MakeAccount, serve

Client = httpx.AsyncClient


async def _sign_up(client: Client, email: str = "new@example.com") -> dict:
    """Sign up, then sign in: the tokens."""
    password = "a long passphrase"
    response = await client.post(
        "/auth/sign-up", json={"email": email, "password": password, "name": "New Learner"}
    )
    assert response.status_code == 202, response.text
    signed_in = await client.post("/auth/sign-in", json={"email": email, "password": password})
    assert signed_in.status_code == 200, signed_in.text
    return signed_in.json()


async def test_sign_up_then_sign_in_gives_working_tokens(client: Client, db: AsyncSession) -> None:
    tokens = await _sign_up(client, "New.Person@Example.com")
    assert tokens["token_type"] == "Bearer"
    assert tokens["user"]["email"] == "new.person@example.com"
    assert tokens["user"]["role"] == "FREE"

    me = await client.get("/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200
    assert me.json()["email"] == "new.person@example.com"
    assert await db.scalar(select(func.count()).select_from(User)) == 1
    actions = list(await db.scalars(select(AuditLog.action).order_by(AuditLog.created_at)))
    assert actions == ["user.sign_up", "user.sign_in"]


async def test_sign_in_with_the_right_password(client: Client, learner: Account) -> None:
    response = await client.post(
        "/auth/sign-in", json={"email": learner.user.email.upper(), "password": learner.password}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["id"] == str(learner.user.id)
    me = await client.get("/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["id"] == str(learner.user.id)


async def test_wrong_password_is_401_and_audited(
    client: Client, learner: Account, db: AsyncSession
) -> None:
    response = await client.post(
        "/auth/sign-in", json={"email": learner.user.email, "password": "not the password"}
    )
    assert response.status_code == 401
    assert response.json()["detail"] == "Email or password is incorrect."
    entry = await db.scalar(select(AuditLog).where(AuditLog.action == "user.sign_in_failed"))
    assert entry is not None
    assert entry.details == {"email": learner.user.email}
    assert entry.user_agent is not None


async def test_unknown_email_gets_the_same_answer(client: Client) -> None:
    response = await client.post(
        "/auth/sign-in", json={"email": "nobody@example.com", "password": "whatever"}
    )
    assert response.status_code == 401
    assert response.json()["detail"] == "Email or password is incorrect."


async def test_refresh_rotates_and_the_old_token_stops_working(
    client: Client, learner: Account
) -> None:
    signed_in = await client.post(
        "/auth/sign-in", json={"email": learner.user.email, "password": learner.password}
    )
    old = signed_in.json()["refresh_token"]

    refreshed = await client.post("/auth/refresh", json={"refresh_token": old})
    assert refreshed.status_code == 200
    assert refreshed.json()["refresh_token"] != old

    reused = await client.post("/auth/refresh", json={"refresh_token": old})
    assert reused.status_code == 401


async def test_sign_out_revokes_the_refresh_token(
    client: Client, learner: Account, db: AsyncSession
) -> None:
    signed_in = (
        await client.post(
            "/auth/sign-in", json={"email": learner.user.email, "password": learner.password}
        )
    ).json()
    headers = {"Authorization": f"Bearer {signed_in['access_token']}"}
    response = await client.post(
        "/auth/sign-out", json={"refresh_token": signed_in["refresh_token"]}, headers=headers
    )
    assert response.status_code == 204
    revoked = await db.scalar(
        select(func.count()).select_from(RefreshToken).where(RefreshToken.revoked_at.is_not(None))
    )
    assert revoked == 1
    again = await client.post("/auth/refresh", json={"refresh_token": signed_in["refresh_token"]})
    assert again.status_code == 401


async def test_sign_out_needs_a_signed_in_caller(client: Client) -> None:
    response = await client.post("/auth/sign-out", json={"refresh_token": "x" * 32})
    assert response.status_code == 401


async def test_jwks_publishes_the_signing_key(client: Client, app: Litestar) -> None:
    response = await client.get("/auth/jwks.json")
    assert response.status_code == 200
    (key,) = response.json()["keys"]
    assert key["kid"] == app.state.identity.signing_key.kid
    assert (key["kty"], key["alg"]) == ("RSA", "RS256")
    assert "d" not in key  # never the private part


async def test_a_role_change_reaches_every_api_process(
    client: Client, make_account: MakeAccount, admin_account: Account, settings: Settings
) -> None:
    """Each API process caches principals for a minute; a change made through one process is
    announced over Redis and the others drop their copy at once."""
    target = await make_account()
    other_app = create_app(settings)
    async with serve(other_app) as other:
        identity = other_app.state.identity
        await _until(lambda: identity.hearing_announcements)
        # The guard decides on the cached principal: FREE is refused.
        assert (await other.get("/admin/users", headers=target.headers)).status_code == 403

        promoted = await client.put(
            f"/admin/users/{target.user.id}/role",
            json={"role": "ADMIN"},
            headers=admin_account.headers,
        )
        assert promoted.status_code == 200

        deadline = time.monotonic() + 2
        while (await other.get("/admin/users", headers=target.headers)).status_code != 200:
            assert time.monotonic() < deadline, "the other process kept its cached role"
            await asyncio.sleep(0.02)


async def _until(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
