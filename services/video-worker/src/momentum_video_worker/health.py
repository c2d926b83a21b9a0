"""The container health check: the worker rewrites a small file on every loop tick, and
``python -m momentum_video_worker --health`` (Docker HEALTHCHECK) passes while it is fresh."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from momentum_domain.config import Settings

# Ticks come every second or so; a minute without one means the loop is stuck or the database
# has been unreachable for that long.
HEALTH_MAX_AGE_SECONDS = 60.0


def health_path(settings: Settings) -> Path:
    return settings.data_dir / "video-worker" / "health.json"


def write_health(path: Path, *, worker_id: str, held: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps({"worker_id": worker_id, "held": held, "at": time.time()}))
    os.replace(temporary, path)


def is_fresh(path: Path, *, max_age_seconds: float = HEALTH_MAX_AGE_SECONDS) -> bool:
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False
    return age <= max_age_seconds
