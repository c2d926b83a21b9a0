"""The ``make dev`` runner supervises: a drill on the real thing. ``python -m momentum_dev``
runs on a fresh database of the test server (an embedded PostgreSQL's initdb costs more time than
it teaches) with its embedded Redis, in a data folder of its own; the banner waits for the API; a
generator and a Redis killed with SIGKILL come back on their own while the API keeps answering;
Ctrl-C then stops every process quietly.

The recovery times are printed (``pytest -s``).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.fixtures.database import create_database, drop_database

STARTUP_SECONDS = 120.0
# Bounds, not targets: a Python service takes seconds to import on a loaded machine.
RECOVERY_SECONDS = 45.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - http only
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


class Runner:
    """The runner process, its output read line by line as it comes."""

    def __init__(self, database_url: str, data_dir: Path, api_port: int) -> None:
        env = {key: value for key, value in os.environ.items() if key != "MOMENTUM_REDIS_URL"}
        env |= {
            "MOMENTUM_DATABASE_URL": database_url,
            "MOMENTUM_DATA_DIR": str(data_dir),
            "MOMENTUM_API_PORT": str(api_port),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-u", "-m", "momentum_dev"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        self.lines: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            self._new.put(line)

    def wait_for(self, pattern: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._new.get(timeout=min(left, 1.0))
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            if re.search(pattern, line):
                return line
        pytest.fail(f"no line matching {pattern!r} within {timeout:g} s:\n{self.output}")

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def child(self, needle: str) -> psutil.Process:
        """The runner's direct child whose command line contains ``needle``."""
        for child in psutil.Process(self.process.pid).children():
            try:
                if any(needle in part for part in child.cmdline()):
                    return child
            except psutil.NoSuchProcess:
                continue
        raise LookupError(needle)


class Poller(threading.Thread):
    """Asks the API for /health/live all along, recording every failure."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.failures: list[int | None] = []
        self.answered = 0
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.wait(0.1):
            status = _status(self.url)
            if status == 200:
                self.answered += 1
            else:
                self.failures.append(status)

    def stop(self) -> None:
        self._stopping.set()
        self.join()


@pytest.fixture
def drill_database(database_server_url: str) -> Iterator[str]:
    name = f"momentum_dev_drill_{uuid.uuid4().hex[:8]}"
    yield create_database(database_server_url, name)
    drop_database(database_server_url, name)


def _wait_until(condition: object, timeout: float, what: str) -> float:
    """Seconds until ``condition()`` held."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():  # type: ignore[operator]
            return time.monotonic() - start
        time.sleep(0.1)
    pytest.fail(f"{what} not within {timeout:g} s")


@pytest.mark.timeout(240)
def test_a_killed_process_comes_back_and_ctrl_c_stops_everything(
    drill_database: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    api_port = _free_port()
    api = f"http://127.0.0.1:{api_port}"
    runner = Runner(drill_database, data_dir, api_port)
    descendants: list[psutil.Process] = []
    try:
        runner.wait_for(r"^Momentum is running\.", STARTUP_SECONDS)
        # The banner comes once the API answers.
        assert _status(f"{api}/health/live") == 200
        poller = Poller(f"{api}/health/live")
        poller.start()

        # The generator, killed: restarted, beating again, the API never stopped answering.
        health_file = data_dir / "generator.health"
        _wait_until(health_file.exists, RECOVERY_SECONDS, "the generator's first beat")
        generator = runner.child("momentum_generator")
        killed_at = time.time()
        generator.kill()
        runner.wait_for(r"^generator exited with code -9; restarting in 0\.5 s$", 10)
        generator_back = _wait_until(
            lambda: float(health_file.read_text() or 0) > killed_at,
            RECOVERY_SECONDS,
            "the restarted generator's beat",
        )
        assert runner.child("momentum_generator").pid != generator.pid

        # The embedded Redis, killed: restarted on the same port, the API ready again.
        redis = runner.child("redis-server")
        redis.kill()
        runner.wait_for(r"^redis exited with code -9; restarting in 0\.5 s$", 10)
        redis_back = _wait_until(
            lambda: _status(f"{api}/health/ready") == 200,
            RECOVERY_SECONDS,
            "readiness after the Redis restart",
        )

        poller.stop()
        print(f"generator back in {generator_back:.1f} s, Redis (API ready) in {redis_back:.1f} s")
        assert poller.failures == [], poller.failures
        assert poller.answered > 0

        # Ctrl-C: everything stops, quietly.
        descendants = psutil.Process(runner.process.pid).children(recursive=True)
        stopping_at = time.monotonic()
        runner.process.send_signal(signal.SIGINT)
        assert runner.process.wait(timeout=30) == 0
        print(f"stopped in {time.monotonic() - stopping_at:.1f} s")
        runner.wait_for(r"^Momentum stopped\.$", 5)
        assert "Traceback" not in runner.output
        assert [p for p in descendants if p.is_running() and p.status() != "zombie"] == []
    finally:
        if runner.process.poll() is None:
            runner.process.kill()
        for process in descendants or []:
            if process.is_running():
                process.kill()
        print(runner.output)
