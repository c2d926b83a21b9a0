"""``make dev``: the whole platform on one machine. Starts the embedded PostgreSQL and Redis
(unless their URLs are given), migrates, seeds the demo content once, then runs every service
until Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

from momentum_domain.config import Settings
from momentum_domain.db import create_engine, create_sessionmaker, transaction
from momentum_domain.embedded import embedded_stack
from momentum_domain.migrations import upgrade
from momentum_domain.seed import DemoAccount, seed_demo

# Each service is started by module name, exactly as its container image starts it.
SERVICES = {
    "api": "momentum_api",
    "generator": "momentum_generator",
    "video-worker": "momentum_video_worker",
}


async def _seed(settings: Settings) -> list[DemoAccount]:
    engine = create_engine(settings, application_name="momentum-seed")
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            return await seed_demo(session, settings.data_dir)
    finally:
        await engine.dispose()


def _banner(settings: Settings, accounts: list[DemoAccount]) -> str:
    url = settings.public_url
    lines = [
        "",
        "Momentum is running.",
        f"  API            {url}",
        f"  API docs       {url}/schema",
        f"  OpenAPI        {url}/schema/openapi.json",
        f"  Readiness      {url}/health/ready",
        "",
        "Demo sign-ins (POST /auth/sign-in with this email and password):",
        *(f"  {a.role:<6} {a.email:<26} {a.password}" for a in accounts),
        "",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def main() -> int:
    with embedded_stack() as env:
        os.environ.update(env)
        settings = Settings()
        upgrade(settings.database_url)
        accounts = asyncio.run(_seed(settings))
        processes = {
            name: subprocess.Popen([sys.executable, "-m", module])  # noqa: S603
            for name, module in SERVICES.items()
        }
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        print(_banner(settings, accounts), flush=True)
        try:
            while all(p.poll() is None for p in processes.values()):
                time.sleep(0.5)
            failed = [name for name, p in processes.items() if p.poll() is not None]
            print(f"Stopping: {', '.join(failed)} exited.", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("\nStopping Momentum...", flush=True)
            return 0
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
            for process in processes.values():
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()


if __name__ == "__main__":
    sys.exit(main())
