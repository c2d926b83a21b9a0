"""Every way a bearer token can be wrong ends in a 401 problem body."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar import Litestar

from momentum_api.identity.keys import SigningKey
from momentum_domain.config import Settings
from tests.fixtures.app import Account

Client = httpx.AsyncClient


def _claims(settings: Settings, account: Account, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": settings.auth_issuer,
        "aud": settings.auth_audience,
        "sub": str(account.user.id),
        "iat": now,
        "exp": now + 300,
        "token_use": "access",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(app: Litestar, claims: dict[str, Any], **headers: Any) -> str:
    key: SigningKey = app.state.identity.signing_key
    return jwt.encode(
        claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, **headers}
    )


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def _me(client: Client, token: str) -> Any:
    return await client.get("/me", headers={"Authorization": f"Bearer {token}"})


async def test_a_valid_token_is_accepted(
    client: Client, app: Litestar, learner: Account, settings: Settings
) -> None:
    response = await _me(client, _sign(app, _claims(settings, learner)))
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("overrides", "detail"),
    [
        ({"iss": "https://evil.example.com"}, "invalid"),
        ({"aud": "someone-else"}, "not meant for this API"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "expired"),
        ({"exp": None}, "invalid"),
        ({"sub": None}, "invalid"),
    ],
    ids=["wrong-issuer", "wrong-audience", "expired", "no-expiry", "no-subject"],
)
async def test_bad_claims_are_rejected(
    client: Client,
    app: Litestar,
    learner: Account,
    settings: Settings,
    overrides: dict[str, Any],
    detail: str,
) -> None:
    response = await _me(client, _sign(app, _claims(settings, learner, **overrides)))
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert detail in response.json()["detail"]


async def test_alg_none_is_rejected(client: Client, learner: Account, settings: Settings) -> None:
    token = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(_claims(settings, learner)) + "."
    response = await _me(client, token)
    assert response.status_code == 401
    assert "algorithm" in response.json()["detail"]


async def test_hs256_signed_with_the_public_key_is_rejected(
    client: Client, app: Litestar, learner: Account, settings: Settings
) -> None:
    key: SigningKey = app.state.identity.signing_key
    public_pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64({"alg": "HS256", "typ": "JWT", "kid": key.kid})
    payload = _b64(_claims(settings, learner))
    import hashlib
    import hmac

    signature = (
        base64.urlsafe_b64encode(
            hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        )
        .rstrip(b"=")
        .decode()
    )
    response = await _me(client, f"{header}.{payload}.{signature}")
    assert response.status_code == 401


async def test_a_tampered_payload_is_rejected(
    client: Client, app: Litestar, learner: Account, admin_account: Account, settings: Settings
) -> None:
    header, _, signature = _sign(app, _claims(settings, learner)).split(".")
    forged = _b64(_claims(settings, learner, sub=str(admin_account.user.id)))
    response = await _me(client, f"{header}.{forged}.{signature}")
    assert response.status_code == 401


async def test_a_token_from_another_key_is_rejected(
    client: Client, app: Litestar, learner: Account, settings: Settings
) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = app.state.identity.signing_key.kid  # even claiming the right key id
    token = jwt.encode(
        _claims(settings, learner), stranger, algorithm="RS256", headers={"kid": kid}
    )
    response = await _me(client, token)
    assert response.status_code == 401


async def test_an_unknown_key_id_is_rejected(
    client: Client, app: Litestar, learner: Account, settings: Settings
) -> None:
    token = _sign(app, _claims(settings, learner), kid="not-a-key")
    response = await _me(client, token)
    assert response.status_code == 401
    assert "unknown key" in response.json()["detail"]


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer a.b.c", "Bearer garbage"]
)
async def test_malformed_authorization_headers_are_401(client: Client, header: str) -> None:
    response = await client.get("/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["status"] == 401
