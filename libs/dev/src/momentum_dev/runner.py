"""``make dev`` (``python -m momentum_dev``): the whole platform on one machine. Starts the
embedded PostgreSQL and Redis (unless their URLs are given), migrates, seeds the demo content
once, then runs every service until Ctrl-C (or SIGTERM), restarting any process that exits."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from functools import partial
from types import FrameType

from momentum_dev.embedded import embedded_servers, spawn, stop
from momentum_dev.seed import DemoAccount, seed_demo
from momentum_domain.config import Settings
from momentum_domain.kit.db import create_engine, create_sessionmaker
from momentum_domain.kit.unit_of_work import transaction
from momentum_domain.migrations import upgrade

# Each service is started by module name, exactly as its container image starts it.
SERVICES = {
    "api": "momentum_api",
    "generator": "momentum_generator",
    "video-worker": "momentum_video_worker",
}
FIRST_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 30.0
# A child up this long is healthy again: its next restart comes after the first delay.
STABLE_SECONDS = 60.0
TICK_SECONDS = 0.2


class Child:
    """A process restarted with exponential backoff whenever it exits."""

    def __init__(
        self, name: str, start: Callable[[], subprocess.Popen[bytes]], stop_signal: int
    ) -> None:
        self.name = name
        self.stop_signal = stop_signal
        self._start = start
        self.process = start()
        self._started_at = time.monotonic()
        self._delay = FIRST_DELAY_SECONDS
        self._restart_at: float | None = None

    def supervise(self, now: float) -> None:
        if self._restart_at is None:
            code = self.process.poll()
            if code is None:
                return
            if now - self._started_at >= STABLE_SECONDS:
                self._delay = FIRST_DELAY_SECONDS
            print(
                f"{self.name} exited with code {code}; restarting in {self._delay:g} s", flush=True
            )
            self._restart_at = now + self._delay
            self._delay = min(self._delay * 2, MAX_DELAY_SECONDS)
        elif now >= self._restart_at:
            self.process = self._start()
            self._started_at = now
            self._restart_at = None


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


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own API
            return bool(response.status == 200)
    except OSError:
        return False


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    # Ctrl-C, SIGTERM and a closed terminal stop the platform (even when started in the
    # background, where SIGINT comes ignored).
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    servers: list[Child] = []
    services: list[Child] = []
    try:
        for server in embedded_servers():
            servers.append(Child(server.name, server.start, server.stop_signal))
            server.wait_ready(servers[-1].process)
            os.environ[server.env_var] = server.url
        settings = Settings()
        upgrade(settings.database_url)
        accounts = asyncio.run(_seed(settings))
        for name, module in SERVICES.items():
            start = partial(spawn, [sys.executable, "-m", module])
            services.append(Child(name, start, signal.SIGTERM))
        live_url = f"http://{settings.api_host}:{settings.api_port}/health/live"
        announced = False
        while True:
            now = time.monotonic()
            for child in servers + services:
                child.supervise(now)
            if not announced and _answers(live_url):
                print(_banner(settings, accounts), flush=True)
                announced = True
            time.sleep(TICK_SECONDS)
    except KeyboardInterrupt:
        return 0
    finally:
        # One stop at a time: a second Ctrl-C must not cut the shutdown short.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        # The services first, so the databases see their clients leave.
        stop([(child.process, child.stop_signal) for child in services])
        stop([(child.process, child.stop_signal) for child in servers])
        print("Momentum stopped.", flush=True)
