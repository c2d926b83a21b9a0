"""Start a service's configuration and providers as its process would, then stop: run by the
deployment contract test in a fresh interpreter whose environment is exactly a task
definition's, so nothing (a global tracer provider, an exporter) leaks into the test process.

``python tests/infra/service_startup.py SERVICE`` prints one JSON line: the settings' environment
and region, and the start-up check's problems; a provider that cannot be built raises.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from momentum_domain.config import Settings
from momentum_domain.deployment import deployment_problems


def build_api(settings: Settings) -> None:
    from momentum_api.app import create_app

    create_app(settings)


def build_generator(settings: Settings) -> None:
    from momentum_generator.worker import build

    # The broker, the notification sender, then the engine, Redis, model provider, storage
    # and semaphore the first step would build.
    _, generator = build(settings)
    generator.runner()


def build_video_worker(settings: Settings) -> None:
    from momentum_domain.kit.storage import create_storage
    from momentum_video_worker.providers import create_provider

    create_storage(settings)
    provider = create_provider(settings)
    asyncio.run(provider.aclose())


BUILDERS = {"api": build_api, "generator": build_generator, "video-worker": build_video_worker}


def main(service: str) -> None:
    settings = Settings()
    # Strict for every stack: the dev stack runs on AWS too, with real money.
    problems = deployment_problems(settings, service, strict=True)
    if not problems:
        BUILDERS[service](settings)
    print(json.dumps({"env": settings.env, "region": settings.aws_region, "problems": problems}))
    sys.stdout.flush()
    # Skip exit hooks: exporters would try to flush to a collector that is not here.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1])
