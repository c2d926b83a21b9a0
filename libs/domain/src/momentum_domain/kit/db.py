"""Engine and session factory. Each process tags its connections with its service name."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg
from sqlalchemy import CursorResult, Executable
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from momentum_domain.config import Settings
from momentum_domain.kit.db_credentials import Credentials, CredentialSource, credential_source
from momentum_domain.kit.telemetry import instrument_engine


def create_engine(settings: Settings, *, application_name: str | None = None) -> AsyncEngine:
    if not settings.database_url:
        raise RuntimeError(
            "MOMENTUM_DATABASE_URL is not set; start the platform through `make dev` or "
            "`python -m momentum_dev.embedded -- <command>`"
        )
    url = make_url(settings.database_url)
    connect = _connector(
        url,
        credential_source(settings, url.username or "", url.password or ""),
        {
            "server_settings": {"application_name": application_name or settings.service_name},
            "timeout": 10,
            "command_timeout": 30,
        },
    )
    engine = create_async_engine(
        url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        # No ping on every checkout (a round trip per request): recycle idle connections
        # instead, and let a dropped connection fail one request rather than slow them all.
        pool_recycle=settings.database_pool_recycle_seconds,
        async_creator=connect,
    )
    instrument_engine(engine)  # SQL spans, when tracing is on
    return engine


def _connector(
    url: URL, source: CredentialSource, options: dict[str, Any]
) -> Callable[[], Awaitable[asyncpg.Connection]]:
    """Opens each new connection with the credentials current at that moment; if the server
    refuses them (rotated meanwhile), once more with what the source offers instead."""
    _, params = url.get_dialect()().create_connect_args(url)
    params = {key: value for key, value in params.items() if key not in ("user", "password")}
    # SQLAlchemy's connection adapter takes these, not asyncpg.connect; with async_creator it
    # is built with its defaults, so a URL setting them would be silently ignored.
    adapter_options = {"prepared_statement_cache_size", "prepared_statement_name_func"} & set(
        params
    )
    if adapter_options:
        raise ValueError(
            f"MOMENTUM_DATABASE_URL sets {', '.join(sorted(adapter_options))}, which this engine "
            "cannot apply (its connections open through async_creator)"
        )

    async def open_with(credentials: Credentials) -> asyncpg.Connection:
        return await asyncpg.connect(
            **params,
            **options,
            user=credentials.username or None,
            password=credentials.password or None,
        )

    async def connect() -> asyncpg.Connection:
        current = await source.current()
        try:
            return await open_with(current)
        except asyncpg.InvalidAuthorizationSpecificationError:
            retry = await source.after_rejection(current)
            if retry is None:
                raise
            return await open_with(retry)

    return connect


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def run(
    session: AsyncSession, statement: Executable, params: Mapping[str, Any] | None = None
) -> CursorResult[Any]:
    """Execute a Core statement on the session's connection, in its transaction, without the
    ORM's statement handling: for the prebuilt statements of hot paths, which return rows."""
    connection = await session.connection()
    return await connection.execute(statement, params)
