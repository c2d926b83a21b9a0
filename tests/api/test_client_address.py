"""The client's address behind the load balancer: rate limits, sign-in limits and audit rows key
on the right-most X-Forwarded-For hop that is not a trusted proxy, and only when the socket peer
is one.

httpx's ASGI transport gives the app the socket peer ``("127.0.0.1", 123)`` unless told
otherwise: here each client names its peer, and each app its trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_api.app import create_app
from momentum_api.origin import IPNetwork, client_address
from momentum_domain.config import Settings
from momentum_domain.models import AuditLog
from tests.fixtures.app import serve

VPC = ipaddress.ip_network("10.20.0.0/16")
ALB = "10.20.1.7"  # a load balancer node in a public subnet of the VPC
OUTSIDER = "192.0.2.50"  # a peer outside every trusted network


@asynccontextmanager
async def api(
    settings: Settings, *, peer: str, trusted: list[IPNetwork], **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with these trusted proxies, and a client whose socket peer is ``peer``."""
    app = create_app(settings.model_copy(update={"api_trusted_proxies": trusted, **overrides}))
    transport = httpx.ASGITransport(app=app, client=(peer, 43210))
    async with (
        serve(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as client,
    ):
        yield client


def forwarded(*hops: str) -> dict[str, str]:
    return {"X-Forwarded-For": ", ".join(hops)}


async def test_anonymous_callers_behind_the_load_balancer_get_a_bucket_each(
    settings: Settings, reference_rows: object
) -> None:
    async with api(settings, peer=ALB, trusted=[VPC], rate_limit_signin="2/3600") as client:
        # The reproduction: sign-ups from many addresses through the one balancer.
        for index in range(6):
            for attempt in range(2):
                response = await client.post(
                    "/auth/sign-up",
                    json={
                        "email": f"caller{index}.{attempt}@example.com",
                        "password": "a long passphrase",
                        "name": "Caller",
                    },
                    headers=forwarded(f"203.0.113.{index}"),
                )
                assert response.status_code == 202, (index, attempt, response.text)
        third = await client.post(
            "/auth/sign-up",
            json={"email": "caller0.2@example.com", "password": "a long passphrase", "name": "C"},
            headers=forwarded("203.0.113.0"),
        )
        assert third.status_code == 429


async def test_a_spoofed_hop_cannot_choose_the_bucket(
    settings: Settings, reference_rows: object
) -> None:
    async with api(settings, peer=ALB, trusted=[VPC], rate_limit_default="3/3600") as client:
        # The caller at 198.51.100.9 sends "X-Forwarded-For: 1.2.3.4"; the ALB appends the
        # address it saw.
        for spoofed in ("1.2.3.4", "5.6.7.8", "9.9.9.9"):
            response = await client.get("/categories", headers=forwarded(spoofed, "198.51.100.9"))
            assert response.status_code == 200
        blocked = await client.get("/categories", headers=forwarded("7.7.7.7", "198.51.100.9"))
        assert blocked.status_code == 429
        # 1.2.3.4 itself was never charged.
        assert (await client.get("/categories", headers=forwarded("1.2.3.4"))).status_code == 200


async def test_the_client_is_the_right_most_hop_that_is_not_a_trusted_proxy(
    settings: Settings, reference_rows: object, db: AsyncSession
) -> None:
    internal = ipaddress.ip_network("172.16.0.0/12")
    async with api(
        settings, peer=ALB, trusted=[VPC, internal], rate_limit_default="2/3600"
    ) as client:
        # Two trusted hops in front of the client, a spoofed one behind it.
        chain = forwarded("6.6.6.6", "198.51.100.30", "172.16.4.4", "10.20.2.2")
        statuses = [(await client.get("/categories", headers=chain)).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        # Another client through the same proxies has its own bucket.
        other = forwarded("198.51.100.31", "172.16.4.4", "10.20.2.2")
        assert (await client.get("/categories", headers=other)).status_code == 200

        response = await client.post(
            "/auth/sign-up",
            json={"email": "chain@example.com", "password": "a long passphrase", "name": "C"},
            headers=forwarded("6.6.6.6", "198.51.100.32", "172.16.4.4"),
        )
        assert response.status_code == 202
    entry = await db.scalar(select(AuditLog).where(AuditLog.action == "user.sign_up"))
    assert entry is not None
    assert str(entry.ip) == "198.51.100.32"


async def test_an_untrusted_peer_is_not_believed(
    settings: Settings, reference_rows: object, db: AsyncSession
) -> None:
    async with api(settings, peer=OUTSIDER, trusted=[VPC], rate_limit_default="3/3600") as client:
        statuses = [
            (await client.get("/categories", headers=forwarded(f"203.0.113.{i}"))).status_code
            for i in range(4)
        ]
        assert statuses == [200, 200, 200, 429]
        response = await client.post(
            "/auth/sign-up",
            json={"email": "direct@example.com", "password": "a long passphrase", "name": "D"},
            headers=forwarded("203.0.113.99"),
        )
        assert response.status_code == 202
    entry = await db.scalar(select(AuditLog).where(AuditLog.action == "user.sign_up"))
    assert entry is not None
    assert str(entry.ip) == OUTSIDER


async def test_no_trusted_proxies_means_the_socket_address(
    settings: Settings, reference_rows: object, db: AsyncSession
) -> None:
    async with api(settings, peer=ALB, trusted=[]) as client:
        response = await client.post(
            "/auth/sign-up",
            json={"email": "untrusting@example.com", "password": "a long passphrase", "name": "U"},
            headers=forwarded("203.0.113.7"),
        )
        assert response.status_code == 202
    entry = await db.scalar(select(AuditLog).where(AuditLog.action == "user.sign_up"))
    assert entry is not None
    assert str(entry.ip) == ALB


async def test_sign_in_failures_are_limited_and_audited_per_real_client(
    settings: Settings, reference_rows: object, db: AsyncSession
) -> None:
    async with api(settings, peer=ALB, trusted=[VPC], auth_signin_max_failures=3) as client:

        async def sign_in(email: str, *hops: str) -> int:
            body = {"email": email, "password": "not the password"}
            return (
                await client.post("/auth/sign-in", json=body, headers=forwarded(*hops))
            ).status_code

        # One client guessing at three accounts, claiming a new address each time.
        for index in range(3):
            assert (
                await sign_in(f"victim{index}@example.com", f"1.1.1.{index}", "198.51.100.40")
                == 401
            )
        assert await sign_in("victim9@example.com", "8.8.8.8", "198.51.100.40") == 429
        # Another client through the same balancer is not blocked.
        assert await sign_in("someone@example.com", "198.51.100.41") == 401
    failed = list(
        await db.scalars(select(AuditLog).where(AuditLog.action == "user.sign_in_failed"))
    )
    assert sorted(str(entry.ip) for entry in failed) == ["198.51.100.40"] * 3 + ["198.51.100.41"]


async def test_malformed_hops_are_never_an_error(
    settings: Settings, reference_rows: object, db: AsyncSession
) -> None:
    async with api(settings, peer=ALB, trusted=[VPC]) as client:
        for header in ("", " , ,", "not-an-ip", "198.51.100.50, 300.1.1.1", "\x7f, [::1]:80"):
            response = await client.get("/categories", headers={"X-Forwarded-For": header})
            assert response.status_code == 200, header
        response = await client.post(
            "/auth/sign-up",
            json={"email": "garbled@example.com", "password": "a long passphrase", "name": "G"},
            headers=forwarded("198.51.100.51", "garbage"),
        )
        assert response.status_code == 202
    # The walk stops at the garbled hop: the balancer that reported it is all we know.
    entry = await db.scalar(select(AuditLog).where(AuditLog.action == "user.sign_up"))
    assert entry is not None
    assert str(entry.ip) == ALB


def _scope(peer: str | None, *header_lines: str) -> Any:
    return {
        "type": "http",
        "client": (peer, 5000) if peer is not None else None,
        "headers": [(b"x-forwarded-for", line.encode("latin-1")) for line in header_lines],
    }


@pytest.mark.parametrize(
    ("peer", "lines", "expected"),
    [
        (ALB, ("203.0.113.1",), "203.0.113.1"),
        (ALB, ("1.2.3.4, 203.0.113.1",), "203.0.113.1"),
        # Several header lines: which one the proxy appended to is unknown, so none is believed.
        (ALB, ("203.0.113.1", "203.0.113.2"), ALB),
        (ALB, ("203.0.113.1", "10.20.9.9"), ALB),
        (ALB, ("2001:db8::1",), "2001:db8::1"),
        (ALB, ("::ffff:203.0.113.3",), "203.0.113.3"),
        # Every hop a trusted proxy: the left-most is the nearest thing to a client.
        (ALB, ("10.20.3.3, 10.20.4.4",), "10.20.3.3"),
        (ALB, (), ALB),
        (ALB, ("203.0.113.1, fe80::1%eth0",), ALB),
        (f"::ffff:{ALB}", ("203.0.113.1",), "203.0.113.1"),
        (OUTSIDER, ("203.0.113.1",), OUTSIDER),
        ("testclient", ("203.0.113.1",), None),
        (None, ("203.0.113.1",), None),
    ],
)
def test_client_address(peer: str | None, lines: tuple[str, ...], expected: str | None) -> None:
    assert client_address(_scope(peer, *lines), [VPC]) == expected
