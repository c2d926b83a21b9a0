"""The migrations build exactly the schema the models describe, and come down cleanly."""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import create_async_engine

from momentum_domain.migrations import downgrade, upgrade
from momentum_domain.models import Base
from tests.fixtures.database import asyncpg_dsn, create_database, drop_database, run_blocking


@pytest.fixture
def empty_database(database_server_url: str, run_id: str, worker_id: str) -> Iterator[str]:
    name = f"momentum_scratch_{run_id}_{worker_id}"
    yield create_database(database_server_url, name)
    drop_database(database_server_url, name)


async def _tables(url: str) -> set[str]:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row["tablename"] for row in rows}
    finally:
        await connection.close()


def test_upgrade_then_downgrade_on_an_empty_database(empty_database: str) -> None:
    # Synchronous on purpose: the migration runner owns its event loop, as in production.
    upgrade(empty_database)
    assert run_blocking(_tables(empty_database)) >= set(Base.metadata.tables)

    downgrade(empty_database, "base")
    assert run_blocking(_tables(empty_database)) == {"alembic_version"}

    upgrade(empty_database)  # and up again: the downgrade left nothing behind
    assert run_blocking(_tables(empty_database)) >= set(Base.metadata.tables)


async def test_models_and_migrations_do_not_drift(database_url: str) -> None:
    engine = create_async_engine(database_url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
                )
            )
    finally:
        await engine.dispose()
    assert diff == []


async def test_every_table_with_updated_at_has_the_trigger(database_url: str) -> None:
    expected = {t.name for t in Base.metadata.sorted_tables if "updated_at" in t.columns}
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await connection.fetch(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname LIKE '%_set_updated_at'"
        )
    finally:
        await connection.close()
    assert {row["relname"] for row in rows} == expected


async def test_six_categories_are_seeded(database_url: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        count = await connection.fetchval("SELECT count(*) FROM categories")
    finally:
        await connection.close()
    assert count == 6


def test_the_relay_migration_expires_notices_nobody_ever_sent(empty_database: str) -> None:
    """Before 0005 nothing relayed the outbox: a day-old notice is marked FAILED, not mailed
    on the first deploy; a recent one stays PENDING for the relay."""
    upgrade(empty_database, "0004")

    async def insert() -> None:
        connection = await asyncpg.connect(asyncpg_dsn(empty_database))
        try:
            await connection.execute(
                "INSERT INTO notification_outbox (channel, recipient, subject, body, payload,"
                " status, created_at) VALUES"
                " ('email', 'a@b.co', 'old', '', '{}', 'PENDING', now() - interval '3 days'),"
                " ('email', 'a@b.co', 'new', '', '{}', 'PENDING', now() - interval '1 hour')"
            )
        finally:
            await connection.close()

    async def statuses() -> dict[str, tuple[str, str | None]]:
        connection = await asyncpg.connect(asyncpg_dsn(empty_database))
        try:
            rows = await connection.fetch(
                "SELECT subject, status, last_error FROM notification_outbox"
            )
            return {row["subject"]: (row["status"], row["last_error"]) for row in rows}
        finally:
            await connection.close()

    run_blocking(insert())
    upgrade(empty_database)
    found = run_blocking(statuses())
    assert found["new"] == ("PENDING", None)
    assert found["old"][0] == "FAILED"
    assert "before the relay existed" in str(found["old"][1])
