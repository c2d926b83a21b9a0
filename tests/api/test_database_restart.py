"""A PostgreSQL restart is weather, not a bug: while the database is down every request that
needs it answers 503 with Retry-After (never 500), readiness names the database, and once it is
back the same app serves again without a restart.

The test restarts a PostgreSQL of its own (pgserver's binaries), never the shared one.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from momentum_api.app import create_app
from momentum_api.problems import database_unreachable
from momentum_domain.config import Settings
from momentum_domain.db import create_engine, create_sessionmaker
from momentum_domain.migrations import upgrade
from momentum_domain.users.models import Role
from momentum_domain.users.service import users
from tests.api.conftest import AppClient, serve

DEADLINE_SECONDS = 25.0
CONCURRENT = 4


@pytest.fixture(scope="module")
def own_server() -> Iterator[Any]:
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pgserver

    # Not under pytest's base temp: as root, pgserver runs the server as another user (see
    # test_database_credentials).
    parent = Path(tempfile.mkdtemp(prefix="momentum-restart-"))
    server: Any = pgserver.get_server(parent / "pg", cleanup_mode="delete")  # type: ignore[attr-defined]
    yield server
    server.cleanup()
    shutil.rmtree(parent, ignore_errors=True)


def _stop(server: Any) -> None:
    import pgserver

    # Fast shutdown: the backends are terminated (AdminShutdown), as in a real restart.
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)


def _start(server: Any) -> None:
    server.ensure_postgres_running()


@pytest.fixture
def restart_settings(own_server: Any, redis_url: str, tmp_path: Path) -> Settings:
    url = Settings.model_validate({"database_url": str(own_server.get_uri())}).database_url
    url = make_url(url).set(database="postgres").render_as_string(hide_password=False)
    with ThreadPoolExecutor(max_workers=1) as pool:  # the migration runner owns its loop
        pool.submit(upgrade, url).result()
    return Settings(
        env="test",
        database_url=url,
        redis_url=redis_url,
        data_dir=tmp_path / "data",
        rate_limit_default="100000/60",
    )


@pytest.fixture
async def restart_client(restart_settings: Settings) -> AsyncIterator[AppClient]:
    async with serve(create_app(restart_settings)) as client:
        yield client


async def _token(settings: Settings, client: AppClient) -> str:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            user = await users.create_local(
                session,
                email="restart@example.com",
                password="correct horse battery staple",
                name="Restart",
                role=Role.FREE,
            )
    finally:
        await engine.dispose()
    token: str = client.app.state.identity.issue_access_token(user)
    return token


async def test_requests_during_a_database_restart_get_503_then_succeed(
    own_server: Any, restart_settings: Settings, restart_client: AppClient
) -> None:
    started = time.monotonic()
    client = restart_client
    headers = {"Authorization": f"Bearer {await _token(restart_settings, client)}"}
    paths = ("/me", "/me/dashboard")
    statuses: list[tuple[str, int]] = []

    async def request(path: str) -> Any:
        response = await client.get(path, headers=headers)
        statuses.append((path, response.status_code))
        return response

    # Warm the pool with concurrent requests: its connections are the ones the restart kills.
    warm = await asyncio.gather(*(request(path) for path in paths * CONCURRENT))
    assert [r.status_code for r in warm] == [200] * len(warm)
    assert (await client.get("/health/ready")).status_code == 200

    await asyncio.to_thread(_stop, own_server)
    try:
        for _ in range(3):  # the killed pooled connections, then new ones refused
            responses = await asyncio.gather(*(request(path) for path in paths * CONCURRENT))
            for response in responses:
                assert response.status_code == 503, response.text
                assert 1 <= int(response.headers["Retry-After"]) <= 30
                assert response.headers["content-type"].startswith("application/problem+json")
                assert "database" in response.json()["detail"].lower()
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": "unavailable", "redis": "ok"}
        assert "database" in ready.json()["detail"]
    finally:
        await asyncio.to_thread(_start, own_server)

    # Back without restarting the app: the pool reconnects on its own.
    for _ in range(3):
        for path in paths:
            assert (await request(path)).status_code == 200
    assert (await client.get("/health/ready")).status_code == 200
    assert not [s for s in statuses if s[1] == 500]
    assert time.monotonic() - started < DEADLINE_SECONDS


async def test_a_bad_statement_is_not_mistaken_for_an_outage(restart_settings: Settings) -> None:
    engine = create_engine(restart_settings)
    try:
        async with engine.connect() as connection:
            with pytest.raises(DBAPIError) as raised:
                await connection.execute(text("SELEC 1"))
    finally:
        await engine.dispose()
    assert not database_unreachable(raised.value)
