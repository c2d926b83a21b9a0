"""The command line the container runs: ``python -m momentum_video_worker`` and its ``--health``
check, which passes only while a running worker keeps its health file fresh."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest

from momentum_domain.config import Settings, get_settings
from momentum_video_worker.__main__ import main
from momentum_video_worker.health import health_path, is_fresh
from tests.fixtures.videos import WorkerFactory, running


def test_help_describes_the_health_check(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])

    assert exit_info.value.code == 0
    assert "--health" in capsys.readouterr().out


async def test_a_running_worker_keeps_its_health_file_fresh(
    make_worker: WorkerFactory,
    video_settings: Settings,
) -> None:
    path = health_path(video_settings)
    assert not is_fresh(path)

    async with running(make_worker(health_file=path)):
        for _ in range(100):
            if is_fresh(path):
                break
            await asyncio.sleep(0.05)

    assert is_fresh(path)
    os.utime(path, (time.time() - 120, time.time() - 120))
    assert not is_fresh(path)  # a stuck worker's file goes stale


def test_health_command_exit_code(
    video_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = health_path(video_settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")
    env = {**os.environ, "MOMENTUM_DATA_DIR": str(video_settings.data_dir)}

    # Exactly what the Docker HEALTHCHECK runs.
    fresh = subprocess.run(
        [sys.executable, "-m", "momentum_video_worker", "--health"], env=env, check=False
    )
    path.unlink()
    monkeypatch.setenv("MOMENTUM_DATA_DIR", str(video_settings.data_dir))
    get_settings.cache_clear()
    try:
        missing = main(["--health"])
    finally:
        get_settings.cache_clear()

    assert fresh.returncode == 0
    assert missing == 1
