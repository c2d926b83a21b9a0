"""Serve the API: ``python -m momentum_api [--host H] [--port P] [--workers N]``."""

from __future__ import annotations

import argparse

import uvicorn

from momentum_domain.config import get_settings
from momentum_domain.deployment import exit_unless_deployable


def main() -> None:
    settings = get_settings()
    exit_unless_deployable(settings, "api")
    parser = argparse.ArgumentParser(description="Momentum REST API server")
    parser.add_argument("--host", default=settings.api_host)
    parser.add_argument("--port", type=int, default=settings.api_port)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    uvicorn.run(
        "momentum_api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=False,
        access_log=False,
    )


if __name__ == "__main__":
    main()
