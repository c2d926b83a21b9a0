from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from momentum_api.app import create_app
from momentum_domain.config import Settings
from tests.api.conftest import serve

Client = httpx.AsyncClient


async def test_live(client: Client) -> None:
    response = await client.get("/health/live")
    assert response.json() == {"status": "ok"}


async def test_ready_when_postgres_and_redis_answer(client: Client) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def client_with(settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[Client]:
    app = create_app(settings.model_copy(update=request.param(_closed_port())))
    async with serve(app) as client:
        yield client


@pytest.mark.parametrize(
    ("client_with", "down"),
    [
        (
            lambda port: {"database_url": f"postgresql+asyncpg://postgres@127.0.0.1:{port}/x"},
            "database",
        ),
        (lambda port: {"redis_url": f"redis://127.0.0.1:{port}/0"}, "redis"),
    ],
    indirect=["client_with"],
    ids=["postgres-down", "redis-down"],
)
async def test_not_ready_when_a_dependency_is_down(client_with: Client, down: str) -> None:
    response = await client_with.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"][down] == "unavailable"
    assert body["checks"]["database" if down == "redis" else "redis"] == "ok"
    assert down in body["detail"]
    # Liveness does not depend on either.
    assert (await client_with.get("/health/live")).status_code == 200
