"""Test fixtures: a real PostgreSQL database and a real Redis database per xdist worker.

The servers come from MOMENTUM_DATABASE_URL / MOMENTUM_REDIS_URL, which `make test` sets
(the embedded stack, or the CI machine's services). Each worker migrates its own database once;
after every test the tables are emptied and the migration's reference rows restored, so tests
may commit freely, from as many connections as they like.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import asyncpg
import pytest
from redis import Redis
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from momentum_domain.config import Settings
from momentum_domain.db import create_engine, create_sessionmaker
from momentum_domain.migrations import upgrade
from momentum_domain.models import Base

REFERENCE_TABLES = ("categories", "badges")
T = TypeVar("T")


def _server_url(name: str) -> str:
    url = os.environ.get(name)
    if not url:
        pytest.exit(f"{name} is not set: run the suite with `make test`.", returncode=2)
    return (
        Settings.model_validate({"database_url": url}).database_url if "DATABASE" in name else url
    )


def _worker_index(worker_id: str) -> int:
    match = re.search(r"\d+", worker_id)
    return int(match.group()) if match else 0


def run_blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code, even while an event loop runs
    in this thread (fixtures may be set up from inside async ones)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def create_database(server_url: str, name: str) -> str:
    """(Re)create an empty database on the server and return its URL."""

    async def recreate() -> None:
        connection = await asyncpg.connect(asyncpg_dsn(server_url))
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    run_blocking(recreate())
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    async def drop() -> None:
        connection = await asyncpg.connect(asyncpg_dsn(server_url))
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    run_blocking(drop())


@pytest.fixture(scope="session")
def worker_index(worker_id: str) -> int:
    return _worker_index(worker_id)


@pytest.fixture(scope="session")
def database_server_url() -> str:
    return _server_url("MOMENTUM_DATABASE_URL")


@pytest.fixture(scope="session")
def run_id() -> str:
    """Names this test run's databases, so runs sharing a server never touch each other's."""
    return os.environ.get("PYTEST_XDIST_TESTRUNUID", uuid.uuid4().hex)[:8]


@pytest.fixture(scope="session")
def database_url(database_server_url: str, run_id: str, worker_id: str) -> Iterator[str]:
    name = f"momentum_test_{run_id}_{worker_id}"
    url = create_database(database_server_url, name)
    with ThreadPoolExecutor(max_workers=1) as pool:  # the migration runner owns its loop
        pool.submit(upgrade, url).result()
    yield url
    drop_database(database_server_url, name)


@pytest.fixture(scope="session")
def redis_url(worker_index: int) -> str:
    base = _server_url("MOMENTUM_REDIS_URL").rstrip("/")
    base = re.sub(r"/\d+$", "", base)
    return f"{base}/{1 + worker_index % 15}"


@pytest.fixture(scope="session")
def settings(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    return Settings(
        env="test",
        database_url=database_url,
        redis_url=redis_url,
        data_dir=tmp_path_factory.getbasetemp().parent / "momentum-data",
        auth_signin_max_failures=5,
        # Every test client shares one address; the limits have tests of their own.
        rate_limit_default="100000/60",
        rate_limit_admin="100000/60",
        rate_limit_signin="100000/60",
    )


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings, application_name="momentum-tests")
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture(scope="session")
def reference_rows(database_url: str) -> dict[str, str]:
    """Rows the migrations seed (the categories) as JSON, restored after each test."""

    async def snapshot() -> dict[str, str]:
        connection = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            return {
                table: await connection.fetchval(
                    f"SELECT coalesce(json_agg(t), '[]') FROM {table} t"
                )
                for table in REFERENCE_TABLES
            }
        finally:
            await connection.close()

    return run_blocking(snapshot())


@pytest.fixture(autouse=True)
async def clean_state(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Empty every table and the Redis database after a test that used them."""
    if "database_url" not in request.fixturenames:
        yield
        return
    database_url: str = request.getfixturevalue("database_url")
    rows: dict[str, str] = request.getfixturevalue("reference_rows")
    redis_url: str = request.getfixturevalue("redis_url")
    yield
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async with connection.transaction():
            await connection.execute(f"TRUNCATE {tables} CASCADE")
            for table, json_rows in rows.items():
                await connection.execute(
                    f"INSERT INTO {table} SELECT * FROM json_populate_recordset(NULL::{table}, $1)",
                    json_rows,
                )
    finally:
        await connection.close()
    with Redis.from_url(redis_url) as redis:
        redis.flushdb()


@pytest.fixture
async def db(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session for arranging and asserting on rows; commit what the app must see."""
    async with sessions() as session:
        yield session
