"""Issue 14's identity findings, each as it was tried: lockout used as a weapon, sessions that
did not end, tokens of the wrong kind, cacheable tokens, the last admin erasing themselves, and
a sign-up that told who has an account and took any password."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jwt
import pytest
from litestar import Litestar
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_api.app import create_app
from momentum_domain.config import Settings
from momentum_domain.errors import Conflict
from momentum_domain.models import AuditLog, OutboxMessage, RefreshToken, User
from momentum_domain.privacy.service import privacy
from momentum_domain.users.models import Role
from tests.fixtures.app import Account, MakeAccount, serve

Client = httpx.AsyncClient
PROXY = "10.20.1.7"  # the load balancer: trusted about X-Forwarded-For
ATTACKER, OWNER = "203.0.113.66", "198.51.100.7"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def sign_in(client: Client, account: Account, **kwargs: Any) -> dict[str, Any]:
    response = await client.post(
        "/auth/sign-in",
        json={"email": account.user.email, "password": account.password},
        **kwargs,
    )
    assert response.status_code == 200, response.text
    return response.json()


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)


@asynccontextmanager
async def behind_proxy(settings: Settings, **overrides: Any) -> AsyncIterator[Client]:
    """The app behind a trusted load balancer: each request names its client address."""
    trusted = [ipaddress.ip_network("10.20.0.0/16")]
    app = create_app(settings.model_copy(update={"api_trusted_proxies": trusted, **overrides}))
    transport = httpx.ASGITransport(app=app, client=(PROXY, 43210))
    async with serve(app), Client(transport=transport, base_url="http://testserver.local") as c:
        yield c


def from_address(address: str) -> dict[str, dict[str, str]]:
    return {"headers": {"X-Forwarded-For": address}}


# Throttle, don't lock ---------------------------------------------------------------------------


async def test_an_attacker_cannot_lock_the_owner_out_from_elsewhere(
    settings: Settings, make_account: MakeAccount, db: AsyncSession
) -> None:
    owner = await make_account()
    wrong = {"email": owner.user.email, "password": "not the password"}
    # The per-address cap (tested in test_client_address) well above what is tried here.
    async with behind_proxy(settings, auth_signin_max_failures=100) as client:
        statuses = [
            (await client.post("/auth/sign-in", json=wrong, **from_address(ATTACKER))).status_code
            for _ in range(8)
        ]
        # Three free failures, then the attacker waits (and is not even checked meanwhile).
        assert statuses[:4] == [401] * 4
        assert 429 in statuses[4:]
        # The owner, from home, is not affected: no lockout of the account as such.
        await sign_in(client, owner, **from_address(OWNER))
    failed = await db.scalar(select(func.count()).where(AuditLog.action == "user.sign_in_failed"))
    assert failed == statuses.count(401)  # every checked failure is still audited


async def test_failures_back_off_exponentially_per_account_and_address(
    settings: Settings, learner: Account
) -> None:
    wrong = {"email": learner.user.email, "password": "not the password"}
    right = {"email": learner.user.email, "password": learner.password}
    async with behind_proxy(settings, auth_signin_max_failures=100) as client:
        here = from_address(ATTACKER)
        for _ in range(4):
            assert (await client.post("/auth/sign-in", json=wrong, **here)).status_code == 401
        # The fourth failure costs a one-second wait; even the right password waits.
        waiting = await client.post("/auth/sign-in", json=right, **here)
        assert (waiting.status_code, waiting.headers["retry-after"]) == (429, "1")
        await asyncio.sleep(1.1)
        assert (await client.post("/auth/sign-in", json=wrong, **here)).status_code == 401
        doubled = await client.post("/auth/sign-in", json=right, **here)
        assert (doubled.status_code, doubled.headers["retry-after"]) == (429, "2")
        await asyncio.sleep(2.1)
        # A success clears the slate for this account and address.
        cleared = await client.post("/auth/sign-in", json=right, **here)
        assert cleared.status_code == 200, cleared.text
        assert (await client.post("/auth/sign-in", json=wrong, **here)).status_code == 401


async def test_guesses_sent_together_are_throttled_like_guesses_sent_in_turn(
    settings: Settings, learner: Account
) -> None:
    """Twenty wrong passwords at once must not all be checked before the first failure counts:
    one attempt at a time per account and address."""
    wrong = {"email": learner.user.email, "password": "not the password"}
    async with behind_proxy(settings, auth_signin_max_failures=100) as client:
        responses = await asyncio.gather(
            *(client.post("/auth/sign-in", json=wrong, **from_address(ATTACKER)) for _ in range(20))
        )
    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {401, 429}
    assert statuses.count(401) <= settings.auth_signin_free_failures + 1, statuses


# Sessions that end ------------------------------------------------------------------------------


async def test_sign_out_ends_the_access_token_too(client: Client, learner: Account) -> None:
    tokens = await sign_in(client, learner)
    access = bearer(tokens["access_token"])
    assert (await client.get("/me", headers=access)).status_code == 200
    out = await client.post(
        "/auth/sign-out", json={"refresh_token": tokens["refresh_token"]}, headers=access
    )
    assert out.status_code == 204
    refused = await client.get("/me", headers=access)
    assert refused.status_code == 401
    assert "session has ended" in refused.json()["detail"]
    # Another session of the same user goes on.
    assert (await client.get("/me", headers=learner.headers)).status_code == 200


async def test_sign_out_reaches_every_api_process_at_once_and_later_ones(
    client: Client, learner: Account, settings: Settings
) -> None:
    tokens = await sign_in(client, learner)
    access = bearer(tokens["access_token"])
    other_app = create_app(settings)
    async with serve(other_app) as other:
        await until(lambda: other_app.state.identity.hearing_announcements)
        assert (await other.get("/me", headers=access)).status_code == 200  # now cached there
        out = await client.post(
            "/auth/sign-out", json={"refresh_token": tokens["refresh_token"]}, headers=access
        )
        assert out.status_code == 204
        started = time.monotonic()
        while (await other.get("/me", headers=access)).status_code != 401:
            assert time.monotonic() - started < 2, "the other process still accepts the token"
            await asyncio.sleep(0.01)
    # A process that starts after the sign-out reads the ended sessions when it subscribes.
    late_app = create_app(settings)
    async with serve(late_app) as late:
        await until(lambda: late_app.state.identity.hearing_announcements)
        assert (await late.get("/me", headers=access)).status_code == 401


async def test_a_replayed_refresh_token_ends_its_whole_family(
    client: Client, learner: Account, db: AsyncSession
) -> None:
    first = await sign_in(client, learner)
    rotated = await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200
    successor = rotated.json()

    # Someone replays the used token: refused, and the legitimate successor dies with it.
    replay = await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    again = await client.post("/auth/refresh", json={"refresh_token": successor["refresh_token"]})
    assert again.status_code == 401
    assert (await client.get("/me", headers=bearer(successor["access_token"]))).status_code == 401
    assert (await client.get("/me", headers=bearer(first["access_token"]))).status_code == 401
    live = await db.scalar(
        select(func.count()).select_from(RefreshToken).where(RefreshToken.revoked_at.is_(None))
    )
    assert live == 0
    reuse = select(AuditLog.id).where(AuditLog.action == "user.refresh_token_reused")
    assert await db.scalar(reuse) is not None
    # The user's other sessions are untouched.
    assert (await client.get("/me", headers=learner.headers)).status_code == 200


@pytest.mark.parametrize("token_use", ["id", "refresh", None])
async def test_only_access_tokens_are_accepted(
    client: Client, app: Litestar, learner: Account, settings: Settings, token_use: str | None
) -> None:
    now = int(time.time())
    claims = {
        "iss": settings.auth_issuer,
        "aud": settings.auth_audience,
        "sub": str(learner.user.id),
        "iat": now,
        "exp": now + 300,
        "token_use": token_use,
    }
    key = app.state.identity.signing_key
    token = jwt.encode(
        {k: v for k, v in claims.items() if v is not None},
        key.private_key,
        algorithm="RS256",
        headers={"kid": key.kid},
    )
    response = await client.get("/me", headers=bearer(token))
    assert response.status_code == 401
    assert "token_use" in response.json()["detail"]


async def test_tokens_and_personal_data_are_never_stored_by_caches(
    client: Client, learner: Account, admin_account: Account
) -> None:
    tokens = await sign_in(client, learner)
    refreshed = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    responses = {
        "sign-in": await client.post(
            "/auth/sign-in", json={"email": learner.user.email, "password": learner.password}
        ),
        "refresh": refreshed,
        "sign-up": await client.post(
            "/auth/sign-up",
            json={"email": "cache@example.com", "password": "a long passphrase", "name": "C"},
        ),
        "admin users": await client.get("/admin/users", headers=admin_account.headers),
    }
    # Whatever answers a signed-in caller is theirs.
    for path in ("/me", "/me/export", "/me/enrollments", "/me/payments", "/me/analytics"):
        responses[path] = await client.get(path, headers=learner.headers)
    for name, response in responses.items():
        assert response.status_code < 300, (name, response.text)
        assert "no-store" in response.headers.get("cache-control", ""), name


# The last admin ---------------------------------------------------------------------------------


async def test_the_last_admin_cannot_erase_themselves(
    client: Client, admin_account: Account, db: AsyncSession
) -> None:
    refused = await client.delete("/me", headers=admin_account.headers)
    assert refused.status_code == 409
    assert "last administrator" in refused.json()["detail"]
    user = await db.get(User, admin_account.user.id)
    assert user is not None
    assert user.erased_at is None
    assert (await client.get("/admin/users", headers=admin_account.headers)).status_code == 200


async def test_an_admin_with_a_colleague_can_erase_themselves(
    client: Client, make_account: MakeAccount
) -> None:
    leaving, staying = await make_account(Role.ADMIN), await make_account(Role.ADMIN)
    assert (await client.delete("/me", headers=leaving.headers)).status_code == 204
    assert (await client.delete("/me", headers=staying.headers)).status_code == 409


async def test_two_admins_leaving_at_once_leave_one(
    client: Client, make_account: MakeAccount, db: AsyncSession
) -> None:
    """Both erase themselves, or one erases themselves while demoting the other, at the same
    instant: exactly one gets through, whatever the interleaving."""
    for _ in range(3):
        first, second = await make_account(Role.ADMIN), await make_account(Role.ADMIN)
        answers = await asyncio.gather(
            client.delete("/me", headers=first.headers),
            client.put(
                f"/admin/users/{first.user.id}/role", json={"role": "FREE"}, headers=second.headers
            ),
            client.delete("/me", headers=second.headers),
        )
        statuses = [a.status_code for a in answers]
        # Whoever came first got through; the erasures cannot both. (The demotion may also
        # find its target or its author already erased: 404 or 401.)
        assert 409 in statuses[::2], statuses
        assert set(statuses) <= {200, 204, 401, 404, 409}, statuses
        admins = await db.scalar(
            select(func.count())
            .select_from(User)
            .where(User.role == Role.ADMIN, User.erased_at.is_(None))
        )
        assert admins == 1
        # Start the next round from no admin at all: demote the survivor directly.
        await db.execute(update(User).where(User.role == Role.ADMIN).values(role=Role.FREE))
        await db.commit()


async def test_the_privacy_service_refuses_to_erase_the_last_admin(
    sessions: async_sessionmaker[AsyncSession], admin_account: Account
) -> None:
    async with sessions() as session, session.begin():
        with pytest.raises(Conflict):
            await privacy.erase(session, admin_account.user.id)


# Passwords and sign-up --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "1234567890",
        "password12",
        "PASSWORD12",
        "qwertyuiop",
        " " * 10,
        "aaaaaaaaaaaa",
        "signup@example.com",
        "my signup@example.com!",
        "Ada Lovelace 1815",
    ],
)
async def test_weak_or_personal_passwords_are_refused(
    client: Client, db: AsyncSession, password: str
) -> None:
    response = await client.post(
        "/auth/sign-up",
        json={"email": "signup@example.com", "password": password, "name": "Ada Lovelace"},
    )
    # Long enough for the schema, refused by a rule beyond it: common, blank or personal.
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "password"
    assert await db.scalar(select(func.count()).select_from(User)) == 0


def test_a_good_passphrase_passes_the_policy() -> None:
    from momentum_domain.users.passwords import password_problem

    assert password_problem("a long passphrase", email="x@example.com", name="X") is None
    assert password_problem("correct horse battery staple", email="ada@x.io", name="Ada") is None


async def test_sign_up_does_not_reveal_whether_the_email_has_an_account(
    client: Client, learner: Account, db: AsyncSession
) -> None:
    body = {"password": "a brand new passphrase", "name": "Someone"}
    taken = await client.post("/auth/sign-up", json={"email": learner.user.email.upper(), **body})
    fresh = await client.post("/auth/sign-up", json={"email": "fresh@example.com", **body})
    assert taken.status_code == fresh.status_code == 202
    assert taken.json() == fresh.json()
    assert "access_token" not in taken.text

    # The existing account is unchanged; its owner is told someone tried.
    signed_in = await client.post(
        "/auth/sign-in", json={"email": learner.user.email, "password": learner.password}
    )
    assert signed_in.status_code == 200
    notices = {
        message.recipient: message.subject
        for message in await db.scalars(
            select(OutboxMessage).where(OutboxMessage.channel == "email")
        )
    }
    assert notices == {
        learner.user.email: "Someone tried to sign up to Momentum with your email",
        "fresh@example.com": "Welcome to Momentum",
    }
    # Trying again the same day answers the same, without flooding the owner's inbox.
    again = await client.post("/auth/sign-up", json={"email": learner.user.email, **body})
    assert (again.status_code, again.json()) == (202, fresh.json())
    to_owner = select(func.count()).where(OutboxMessage.recipient_id == learner.user.id)
    assert await db.scalar(to_owner) == 1
    # The new account works with the password chosen.
    fresh_sign_in = {"email": "fresh@example.com", "password": body["password"]}
    assert (await client.post("/auth/sign-in", json=fresh_sign_in)).status_code == 200
