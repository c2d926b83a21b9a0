"""Run the video worker: ``python -m momentum_video_worker``; ``--health`` is the container
health check."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from momentum_domain.config import Settings, get_settings
from momentum_domain.deployment import exit_unless_deployable
from momentum_domain.kit.logging_setup import setup_logging
from momentum_video_worker.health import health_path, is_fresh


async def serve(settings: Settings) -> None:
    # Imported here: the health check runs every 30 s and needs none of this.

    from momentum_domain.kit.db import create_engine, create_sessionmaker
    from momentum_domain.kit.heartbeat import Heartbeat
    from momentum_domain.kit.redis_clients import async_redis
    from momentum_domain.kit.storage import create_storage
    from momentum_domain.kit.telemetry import setup_telemetry
    from momentum_video_worker.providers import create_provider
    from momentum_video_worker.worker import VideoWorker, default_worker_id

    telemetry = setup_telemetry(settings, "momentum-video-worker")
    engine = create_engine(settings, application_name=f"{settings.service_name}-video-worker")
    provider = create_provider(settings)
    worker_id = default_worker_id()
    # Heartbeats tell the API (and the deploy's smoke test) this worker runs, at this version.
    redis = async_redis(settings.redis_url) if settings.redis_url else None
    heartbeat = (
        Heartbeat(redis, "video-worker", worker_id=worker_id, version=settings.version)
        if redis is not None
        else None
    )
    worker = VideoWorker(
        settings,
        create_sessionmaker(engine),
        create_storage(settings),
        provider,
        worker_id=worker_id,
        health_file=health_path(settings),
        heartbeat=heartbeat,
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.stop)
    logging.getLogger(__name__).info(
        "video worker %s started (provider %s, storage %s)",
        worker.id,
        provider.name,
        settings.storage_backend,
    )
    try:
        await worker.run()
    finally:
        await provider.aclose()
        await engine.dispose()
        if redis is not None:
            await redis.aclose()
        telemetry.shutdown()  # flush the last spans and metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m momentum_video_worker",
        description="Momentum's video worker: narration scripts to stored MP4s.",
    )
    parser.add_argument(
        "--health",
        action="store_true",
        help="exit 0 if the running worker's health file is fresh, 1 otherwise",
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.health:
        return 0 if is_fresh(health_path(settings)) else 1
    exit_unless_deployable(settings, "video-worker")
    setup_logging(settings)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
