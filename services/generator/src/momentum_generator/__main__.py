"""Run the generation worker: ``python -m momentum_generator [--threads N]``; ``--health``
checks a running worker's health file (the container health check)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path

from momentum_domain.config import get_settings
from momentum_domain.deployment import exit_unless_deployable
from momentum_domain.kit.logging_setup import setup_logging
from momentum_domain.kit.telemetry import setup_telemetry
from momentum_generator.worker import start_worker, stop_worker


def main() -> int:
    settings = get_settings()
    parser = argparse.ArgumentParser(description="Momentum course generation worker (Dramatiq)")
    parser.add_argument("--threads", type=int, default=24, help="concurrent steps per process")
    parser.add_argument("--health-file", type=Path, default=settings.data_dir / "generator.health")
    parser.add_argument(
        "--health", action="store_true", help="exit 0 if a running worker is healthy"
    )
    args = parser.parse_args()
    if args.health:
        try:
            age = time.time() - float(args.health_file.read_text())
        except (OSError, ValueError):
            return 1
        return 0 if age < 60 else 1

    exit_unless_deployable(settings, "generator")
    setup_logging(settings)
    telemetry = setup_telemetry(settings, "momentum-generator")
    args.health_file.parent.mkdir(parents=True, exist_ok=True)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    worker, generator, sweeper = start_worker(
        settings, threads=args.threads, health_file=args.health_file
    )
    logging.getLogger(__name__).info("generation worker started with %d threads", args.threads)
    stopping.wait()
    stop_worker(worker, generator, sweeper)
    telemetry.shutdown()  # export what the last steps counted
    return 0


if __name__ == "__main__":
    sys.exit(main())
