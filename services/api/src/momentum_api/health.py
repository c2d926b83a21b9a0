"""Liveness and readiness for the load balancer and the container health check."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_api.problems import problem

logger = logging.getLogger(__name__)
CHECK_TIMEOUT_SECONDS = 2.0


async def _check_database(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        await session.execute(text("SELECT 1"))


async def _check_redis(redis: Redis) -> None:
    await redis.ping()


class HealthController(Controller):
    path = "/health"
    tags = ["Health"]

    @get("/live", operation_id="getLiveness", summary="The process is up", cache=False)
    async def live(self) -> dict[str, str]:
        return {"status": "ok"}

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
