"""Production mode: tokens from an external provider (Cognito), keys fetched from its JWKS URL
over real HTTP, users created on first sight with the role their groups give them and the email
Cognito's userInfo endpoint gives them (Cognito access tokens carry no email)."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_api.app import create_app
from momentum_api.identity.keys import SigningKey
from momentum_domain.config import Settings
from momentum_domain.models import Role, User
from tests.fixtures.app import serve

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_TestPool"
CLIENT_ID = "test-app-client"
# The pool signs in with email as the username, so Cognito's "username" is the sub (a UUID).
ADA = "4c1f7d2e-90b1-70f3-5b8e-1a2b3c4d5e6f"
GRACE = "9a8b7c6d-5e4f-7031-a2b3-c4d5e6f70819"


class JwksServer:
    """A real HTTP server standing in for a Cognito user pool: its JWKS and, on the pool's
    domain, the OAuth2 userInfo endpoint in Cognito's wire shape (attributes chosen by the access
    token's scopes, "email_verified" as a string, 401 invalid_token for expired or revoked
    tokens). It counts what it is asked and can fail on demand."""

    def __init__(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.key = SigningKey.from_pem(pem)
        # sub -> the user's attributes, as userInfo reports them
        self.users: dict[str, dict[str, str]] = {}
        self.reset()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/jwks.json":
                    server.jwks_requests += 1
                    self._answer(200, {"keys": [server.key.public_jwk]})
                elif self.path == "/oauth2/userInfo":
                    server.userinfo_requests += 1
                    self._answer(*server.userinfo(self.headers.get("Authorization", "")))
                else:
                    self._answer(404, {"message": "Not found"})

            def _answer(
                self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.url = f"{base}/.well-known/jwks.json"
        self.userinfo_url = f"{base}/oauth2/userInfo"

    def reset(self) -> None:
        self.jwks_requests = 0
        self.userinfo_requests = 0
        self.userinfo_failures = 0  # how many next userInfo requests answer 503
        self.userinfo_sub: str | None = None  # answer for this sub instead of the token's
        self.revoked: set[str] = set()  # jti of tokens signed out globally
        self.users = {
            ADA: {"email": "Ada@Example.com", "email_verified": "true", "name": "Ada Lovelace"},
            GRACE: {"email": "grace@example.com", "email_verified": "false"},
        }

    def userinfo(self, authorization: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        if self.userinfo_failures > 0:
            self.userinfo_failures -= 1
            return 503, {"error": "server_error"}, {}
        scheme, _, token = authorization.partition(" ")
        if scheme != "Bearer" or not token:
            return _userinfo_error(
                400, "invalid_request", "Bad OAuth2 request at UserInfo Endpoint"
            )
        try:
            claims = jwt.decode(
                token, self.key.private_key.public_key(), algorithms=["RS256"], issuer=ISSUER
            )
        except jwt.ExpiredSignatureError:
            return _userinfo_error(401, "invalid_token", "Access token is expired")
        except jwt.InvalidTokenError:
            return _userinfo_error(401, "invalid_token", "Invalid access token")
        if claims.get("token_use") != "access" or claims.get("jti") in self.revoked:
            return _userinfo_error(401, "invalid_token", "Access token has been revoked")
        scopes = set(str(claims.get("scope", "")).split())
        if "openid" not in scopes:
            return _userinfo_error(400, "invalid_request", "Access token does not contain openid")
        sub = self.userinfo_sub or claims["sub"]
        attributes = self.users.get(sub, {})
        answer: dict[str, Any] = {"sub": sub, "username": claims["username"]}
        # "openid" alone returns every attribute the client may read.
        if scopes == {"openid"} or "email" in scopes:
            answer |= {k: v for k, v in attributes.items() if k.startswith("email")}
        if scopes == {"openid"} or "profile" in scopes:
            answer |= {k: v for k, v in attributes.items() if k == "name"}
        return 200, answer, {}

    def access_token(self, sub: str = ADA, **claims: Any) -> str:
        """A Cognito access token as the hosted sign-in issues it: no email, no aud."""
        now = int(time.time())
        base = {
            "sub": sub,
            "iss": ISSUER,
            "version": 2,
            "client_id": CLIENT_ID,
            "origin_jti": str(uuid.uuid4()),
            "event_id": str(uuid.uuid4()),
            "token_use": "access",
            "scope": "openid email profile",
            "auth_time": now,
            "exp": now + 300,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "username": sub,
        }
        return self._sign({**base, **claims})

    def id_token(self, sub: str = ADA, **claims: Any) -> str:
        """A Cognito ID token: the user's attributes, for the app client ("aud")."""
        now = int(time.time())
        base = {
            "sub": sub,
            "email_verified": True,
            "iss": ISSUER,
            "cognito:username": sub,
            "origin_jti": str(uuid.uuid4()),
            "aud": CLIENT_ID,
            "event_id": str(uuid.uuid4()),
            "token_use": "id",
            "auth_time": now,
            "exp": now + 300,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "email": "ada.id@example.com",
        }
        return self._sign({**base, **claims})

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims, self.key.private_key, algorithm="RS256", headers={"kid": self.key.kid}
        )


def _userinfo_error(
    status: int, error: str, description: str
) -> tuple[int, dict[str, Any], dict[str, str]]:
    challenge = f'Bearer error="{error}", error_description="{description}"'
    return (
        status,
        {"error": error, "error_description": description},
        {"WWW-Authenticate": challenge},
    )


@pytest.fixture(scope="module")
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()


@pytest.fixture
def cognito_settings(settings: Settings, jwks_server: JwksServer) -> Settings:
    jwks_server.reset()
    return settings.model_copy(
        update={
            "auth_jwks_url": jwks_server.url,
            "auth_userinfo_url": jwks_server.userinfo_url,
            "auth_issuer": ISSUER,
            "auth_audience": CLIENT_ID,
        }
    )


@pytest.fixture
async def cognito_client(
    cognito_settings: Settings, reference_rows: Any
) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(cognito_settings)) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def users_with_subject(db: AsyncSession, subject: str) -> int:
    return await db.scalar(select(func.count()).select_from(User).where(User.subject == subject))


async def test_first_sight_stores_the_userinfo_email_and_the_groups_role(
    cognito_client: httpx.AsyncClient,
    cognito_settings: Settings,
    jwks_server: JwksServer,
    db: AsyncSession,
) -> None:
    token = jwks_server.access_token(**{"cognito:groups": ["ADMIN"]})
    response = await cognito_client.get("/admin/audit-logs", headers=bearer(token))
    assert response.status_code == 200, response.text
    user = await db.scalar(select(User).where(User.subject == ADA))
    assert user is not None
    assert (user.identity_provider, user.role, user.email, user.email_verified, user.name) == (
        "cognito",
        Role.ADMIN,
        "ada@example.com",
        True,
        "Ada Lovelace",
    )
    assert jwks_server.userinfo_requests == 1

    # A known user is not asked about again: not by this process...
    again = await cognito_client.get("/me", headers=bearer(token))
    assert again.json()["id"] == str(user.id)
    assert again.json()["email"] == "ada@example.com"
    # ...nor by another one, whose cache is empty: the row answers.
    async with serve(create_app(cognito_settings)) as other:
        later = await other.get("/me", headers=bearer(jwks_server.access_token()))
    assert later.json()["id"] == str(user.id)
    assert jwks_server.userinfo_requests == 1
    assert jwks_server.jwks_requests >= 1


async def test_a_learner_without_groups_is_free_and_not_admin(
    cognito_client: httpx.AsyncClient, jwks_server: JwksServer
) -> None:
    headers = bearer(jwks_server.access_token(GRACE))
    me = (await cognito_client.get("/me", headers=headers)).json()
    assert (me["role"], me["email"], me["email_verified"]) == ("FREE", "grace@example.com", False)
    assert (await cognito_client.get("/admin/audit-logs", headers=headers)).status_code == 403


async def test_userinfo_down_on_first_sight_is_a_503_with_retry_after_and_no_user(
    cognito_client: httpx.AsyncClient, jwks_server: JwksServer, db: AsyncSession
) -> None:
    token = jwks_server.access_token()
    jwks_server.userinfo_failures = 3  # every attempt of the request
    response = await cognito_client.get("/me", headers=bearer(token))
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) > 0
    assert "identity provider" in response.json()["detail"]
    assert jwks_server.userinfo_requests == 3  # bounded retries
    assert await users_with_subject(db, ADA) == 0

    # Two failures are ridden out by the retries; the same token then works.
    jwks_server.userinfo_failures = 2
    retried = await cognito_client.get("/me", headers=bearer(token))
    assert retried.status_code == 200, retried.text
    assert retried.json()["email"] == "ada@example.com"
    assert jwks_server.userinfo_requests == 6


async def test_userinfo_unreachable_is_a_503_and_no_user(
    settings: Settings, jwks_server: JwksServer, db: AsyncSession, reference_rows: Any
) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    jwks_server.reset()
    app = create_app(
        settings.model_copy(
            update={
                "auth_jwks_url": jwks_server.url,
                "auth_userinfo_url": f"http://127.0.0.1:{port}/oauth2/userInfo",
                "auth_issuer": ISSUER,
                "auth_audience": CLIENT_ID,
            }
        )
    )
    async with serve(app) as client:
        response = await client.get("/me", headers=bearer(jwks_server.access_token()))
    assert response.status_code == 503, response.text
    assert "retry-after" in response.headers
    assert await users_with_subject(db, ADA) == 0


async def test_userinfo_for_another_subject_is_a_401(
    cognito_client: httpx.AsyncClient, jwks_server: JwksServer, db: AsyncSession
) -> None:
    jwks_server.userinfo_sub = GRACE
    response = await cognito_client.get("/me", headers=bearer(jwks_server.access_token()))
    assert response.status_code == 401, response.text
    assert "does not match" in response.json()["detail"]
    assert await db.scalar(select(func.count()).select_from(User)) == 0


async def test_a_token_userinfo_calls_invalid_is_a_401(
    cognito_client: httpx.AsyncClient, jwks_server: JwksServer, db: AsyncSession
) -> None:
    # Signed out globally: the signature and expiry still verify, Cognito knows better.
    jti = str(uuid.uuid4())
    jwks_server.revoked.add(jti)
    response = await cognito_client.get("/me", headers=bearer(jwks_server.access_token(jti=jti)))
    assert response.status_code == 401, response.text
    assert "Access token has been revoked" in response.json()["detail"]
    assert jwks_server.userinfo_requests == 1  # a refusal is not retried
    assert await users_with_subject(db, ADA) == 0


async def test_a_token_whose_scopes_hide_the_email_is_refused_naming_the_scope(
    cognito_client: httpx.AsyncClient, jwks_server: JwksServer, db: AsyncSession
) -> None:
    without_email = jwks_server.access_token(scope="openid profile")
    response = await cognito_client.get("/me", headers=bearer(without_email))
    assert response.status_code == 403, response.text
    assert "email scope" in response.json()["detail"]
    assert response.json()["required_scopes"] == ["openid", "email"]
    assert jwks_server.userinfo_requests == 1

    # An InitiateAuth token (no openid scope) is refused without asking userInfo.
    sdk_token = jwks_server.access_token(scope="aws.cognito.signin.user.admin")
    response = await cognito_client.get("/me", headers=bearer(sdk_token))
    assert response.status_code == 403, response.text
    assert "openid scope" in response.json()["detail"]
    assert jwks_server.userinfo_requests == 1
    assert await users_with_subject(db, ADA) == 0


async def test_a_token_carrying_the_email_is_believed_without_asking_userinfo(
    cognito_client: httpx.AsyncClient, jwks_server: JwksServer, db: AsyncSession
) -> None:
    # Claims a pre-token-generation trigger adds to the access token.
    token = jwks_server.access_token(email="ada.id@example.com", email_verified="true")
    response = await cognito_client.get("/me", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert (response.json()["email"], response.json()["email_verified"]) == (
        "ada.id@example.com",
        True,
    )
    assert jwks_server.userinfo_requests == 0


async def test_an_id_token_is_refused(
    cognito_client: httpx.AsyncClient, jwks_server: JwksServer, db: AsyncSession
) -> None:
    """Same keys, same app client, but not an access token: it cannot call the API."""
    response = await cognito_client.get("/me", headers=bearer(jwks_server.id_token()))
    assert response.status_code == 401
    assert "token_use" in response.json()["detail"]
    assert jwks_server.userinfo_requests == 0
    assert await users_with_subject(db, ADA) == 0


async def test_a_token_for_another_app_client_is_rejected(
    cognito_client: httpx.AsyncClient, jwks_server: JwksServer
) -> None:
    token = jwks_server.access_token(client_id="another-client")
    response = await cognito_client.get("/me", headers=bearer(token))
    assert response.status_code == 401
    assert jwks_server.userinfo_requests == 0


async def test_local_identity_routes_are_not_mounted(
    cognito_client: httpx.AsyncClient,
) -> None:
    response = await cognito_client.post("/auth/sign-in", json={"email": "a@b.co", "password": "x"})
    assert response.status_code == 404
