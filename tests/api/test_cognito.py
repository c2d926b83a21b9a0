"""Production mode: tokens from an external provider (Cognito), keys fetched from its JWKS URL
over real HTTP, users created on first sight with the role their groups give them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_api.app import create_app
from momentum_api.identity.keys import SigningKey
from momentum_domain.config import Settings
from momentum_domain.models import Role, User
from tests.api.conftest import serve

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_TestPool"
CLIENT_ID = "test-app-client"


class JwksServer:
    """A real HTTP server publishing a key set, counting how often it is asked."""

    def __init__(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        from cryptography.hazmat.primitives import serialization

        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.key = SigningKey.from_pem(pem)
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                body = json.dumps({"keys": [server.key.public_jwk]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"

    def token(self, **claims: Any) -> str:
        now = int(time.time())
        base = {
            "iss": ISSUER,
            "sub": "c0gn1t0-sub-123",
            "client_id": CLIENT_ID,
            "token_use": "access",
            "iat": now,
            "exp": now + 300,
            "username": "ada",
            "email": "ada@example.com",
        }
        return jwt.encode(
            {**base, **claims},
            self.key.private_key,
            algorithm="RS256",
            headers={"kid": self.key.kid},
        )


@pytest.fixture(scope="module")
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()


@pytest.fixture
async def cognito_client(
    settings: Settings, jwks_server: JwksServer, reference_rows: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        settings.model_copy(
            update={
                "auth_jwks_url": jwks_server.url,
                "auth_issuer": ISSUER,
                "auth_audience": CLIENT_ID,
            }
        )
    )
    async with serve(app) as client:
        yield client


async def test_first_sight_creates_the_user_with_the_groups_role(
    cognito_client: httpx.AsyncClient, jwks_server: JwksServer, db: AsyncSession
) -> None:
    token = jwks_server.token(**{"cognito:groups": ["ADMIN"]})
    response = await cognito_client.get(
        "/admin/audit-logs", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    user = await db.scalar(select(User).where(User.subject == "c0gn1t0-sub-123"))
    assert user is not None
    assert (user.identity_provider, user.role, user.email) == (
        "cognito",
        Role.ADMIN,
        "ada@example.com",
    )

    again = await cognito_client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert again.json()["id"] == str(user.id)
    assert jwks_server.requests >= 1


async def test_a_learner_without_groups_is_free_and_not_admin(
    cognito_client: httpx.AsyncClient, jwks_server: JwksServer
) -> None:
    token = jwks_server.token(sub="learner-sub")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await cognito_client.get("/me", headers=headers)).json()["role"] == "FREE"
    assert (await cognito_client.get("/admin/audit-logs", headers=headers)).status_code == 403


async def test_a_token_for_another_app_client_is_rejected(
    cognito_client: httpx.AsyncClient, jwks_server: JwksServer
) -> None:
    token = jwks_server.token(client_id="another-client")
    response = await cognito_client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


async def test_local_identity_routes_are_not_mounted(
    cognito_client: httpx.AsyncClient,
) -> None:
    response = await cognito_client.post("/auth/sign-in", json={"email": "a@b.co", "password": "x"})
    assert response.status_code == 404
