"""Liveness and readiness for the load balancer and the container health check; the running
version and the workers' heartbeats for the deploy's smoke test."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_api.problems import problem
from momentum_domain.kit.heartbeat import HEARTBEAT_MAX_AGE_SECONDS, live_workers

logger = logging.getLogger(__name__)
CHECK_TIMEOUT_SECONDS = 2.0


async def _check_database(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        await session.execute(text("SELECT 1"))


async def _check_redis(redis: Redis) -> None:
    await redis.ping()


class Liveness(msgspec.Struct):
    status: str
    # The image tag this process runs (MOMENTUM_VERSION, set by the task definition).
    version: str


class Workers(msgspec.Struct):
    # The API's own version, to compare with the workers' at a glance.
    version: str
    max_age_seconds: float
    # Per worker kind: version -> how many workers of that version beat within max_age_seconds.
    # A kind with no live worker maps to {}.
    workers: dict[str, dict[str, int]]


class HealthController(Controller):
    path = "/health"
    tags = ["Health"]

    @get("/live", operation_id="getLiveness", summary="The process is up", cache=False)
    async def live(self, state: State) -> Liveness:
        return Liveness(status="ok", version=state.settings.version)

    @get(
        "/workers",
        operation_id="getWorkers",
        summary="Workers alive by kind and version (their heartbeats in Redis)",
        cache=False,
        responses={
            200: ResponseSpec(Workers, description="Live workers per kind, by version"),
            503: ResponseSpec(None, description="Redis, which holds the heartbeats, is down"),
        },
    )
    async def workers(self, request: Request[Any, Any, Any], state: State) -> Response[Any]:
        try:
            report = await asyncio.wait_for(live_workers(state.redis), CHECK_TIMEOUT_SECONDS)
        except Exception as exc:
            logger.warning("reading worker heartbeats failed: %r", exc)
            return problem(request, 503, "Worker heartbeats unavailable: Redis unavailable.")
        return Response(
            Workers(
                version=state.settings.version,
                max_age_seconds=HEARTBEAT_MAX_AGE_SECONDS,
                workers=report,
            )
        )

    @get("/ready", operation_id="getReadiness", summary="PostgreSQL and Redis are reachable")
    async def ready(self, request: Request[Any, Any, Any], state: State) -> Response[Any]:
        checks = {
            "database": _check_database(state.sessions),
            "redis": _check_redis(state.redis),
        }
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await asyncio.wait_for(check, CHECK_TIMEOUT_SECONDS)
                results[name] = "ok"
            except Exception as exc:
                logger.warning("readiness check %s failed: %r", name, exc)
                results[name] = "unavailable"
        if all(status == "ok" for status in results.values()):
            return Response({"status": "ok", "checks": results})
        failed = ", ".join(name for name, status in results.items() if status != "ok")
        return problem(request, 503, f"Not ready: {failed} unavailable.", extra={"checks": results})
