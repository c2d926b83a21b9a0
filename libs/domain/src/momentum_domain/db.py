"""Engine and session factory. Each process tags its connections with its service name."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import CursorResult, Executable
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from momentum_domain.config import Settings


def create_engine(settings: Settings, *, application_name: str | None = None) -> AsyncEngine:
    if not settings.database_url:
        raise RuntimeError(
            "MOMENTUM_DATABASE_URL is not set; start the platform through `make dev` or "
            "`python -m momentum_domain.embedded -- <command>`"
        )
    return create_async_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        # No ping on every checkout (a round trip per request): recycle idle connections
        # instead, and let a dropped connection fail one request rather than slow them all.
        pool_recycle=1800,
        connect_args={
            "server_settings": {"application_name": application_name or settings.service_name},
            "timeout": 10,
            "command_timeout": 30,
        },
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose work commits on success and rolls back on any error."""
    async with sessions() as session, session.begin():
        yield session


async def run(
    session: AsyncSession, statement: Executable, params: Mapping[str, Any] | None = None
) -> CursorResult[Any]:
    """Execute a Core statement on the session's connection, in its transaction, without the
    ORM's statement handling: for the prebuilt statements of hot paths, which return rows."""
    connection = await session.connection()
    return await connection.execute(statement, params)
