"""Serve the API: ``python -m momentum_api [--host H] [--port P] [--workers N]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from momentum_domain.config import Settings, get_settings
from momentum_domain.deployment import exit_unless_deployable
from momentum_domain.kit.logging_setup import logging_config, setup_logging


def server_config(settings: Settings, argv: Sequence[str] | None = None) -> uvicorn.Config:
    """The server's configuration: what ``main`` runs, and what tests inspect."""
    parser = argparse.ArgumentParser(description="Momentum REST API server")
    parser.add_argument("--host", default=settings.api_host)
    parser.add_argument("--port", type=int, default=settings.api_port)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    return uvicorn.Config(
        "momentum_api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        # The client address is decided by momentum_api.origin, from the trusted proxies.
        proxy_headers=False,
        # Our own access log (momentum_api.access_log) replaces uvicorn's, which logs raw
        # paths with their query strings. Each worker process applies this configuration.
        access_log=False,
        log_config=logging_config(settings),
        timeout_keep_alive=settings.api_keep_alive_seconds,
    )


def main() -> None:
    settings = get_settings()
    setup_logging(settings)
    exit_unless_deployable(settings, "api")
    config = server_config(settings)
    # What uvicorn.run does with its Config.
    server = uvicorn.Server(config)
    try:
        if config.workers > 1:
            Multiprocess(config, sockets=[config.bind_socket()]).run()
        else:
            server.run()
    except KeyboardInterrupt:
        pass
    if not server.started and config.workers == 1:
        sys.exit(STARTUP_FAILURE)


if __name__ == "__main__":
    main()
