"""The year-one API benchmark: the learner API under N concurrent clients, over real HTTP.

    python bench/api_bench.py [--concurrency 32] [--duration 10] [--warmup 2] [--workers 2]

It starts PostgreSQL and Redis (embedded, in ``--data-dir``, unless MOMENTUM_DATABASE_URL /
MOMENTUM_REDIS_URL are set), migrates, loads the year-one data set once (bench/load_year_one.py),
starts the API as ``--workers`` single-process servers (``python -m momentum_api``, one per
port, as each ECS task runs one behind the load balancer) with rate limits lifted,
mints access tokens for sampled learners with the local identity provider's signing key, and
drives each endpoint with ``--concurrency`` keep-alive connections, spread evenly over the
servers as the load balancer spreads requests, for ``--duration`` seconds after ``--warmup``
seconds. It prints requests/s, P50/P95/P99 latency, non-2xx responses and
throughput as a fraction of a trivial endpoint of the same server (the ceiling) per endpoint,
with PASS/FAIL against the issue's P95 target, and writes the same to bench/results/api.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httptools
import jwt
import psutil
from load_year_one import DEFAULT_DATA_DIR, asyncpg_dsn, year_one_database
from rich.console import Console
from rich.table import Table

from momentum_api.identity.keys import SigningKey, load_or_create
from momentum_domain.config import REPO_ROOT, Settings

P95_TARGET_MS = 50.0
P95_AIM_MS = 20.0
# The benchmark measures the endpoints, not the limiter's 429s: limits far above any load here.
UNLIMITED_RATE = "1000000000/60"
HOST = "127.0.0.1"
SAMPLED_LEARNERS = 1_000
SAMPLED_ENROLLERS = 500
TOKEN_TTL_SECONDS = 4 * 3600
RESULTS_PATH = REPO_ROOT / "bench" / "results" / "api.json"
# Above this, processes outside the benchmark visibly compete for the CPUs.
OTHER_CPU_WARNING_CORES = 0.15


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 client connection, parsed by httptools (uvicorn's own parser).

    The load generator shares the machine's CPUs with the server, so it must be cheap: on this
    2-core machine httpx.AsyncClient spent ~2-3 ms of CPU per request at 32 connections, and
    capped /health/live at ~300 requests/s; this connection spends ~25 us and lets the same
    server answer ~8,000-12,000 requests/s."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._response: asyncio.Future[tuple[int, bytes]] | None = None
        self._body: list[bytes] = []

    @classmethod
    async def open(cls, port: int) -> HttpConnection:
        _, connection = await asyncio.get_running_loop().create_connection(cls, HOST, port)
        return connection

    @property
    def is_open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Send one request and return the response's status and body."""
        assert self._transport is not None
        self._body = []
        self._response = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return await self._response

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    # asyncio.Protocol and httptools callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"unparsable response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._fail(ConnectionError(f"connection lost: {exc}"))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._response is not None and not self._response.done():
            self._response.set_result((self._parser.get_status_code(), b"".join(self._body)))
        if not self._parser.should_keep_alive() and self._transport is not None:
            self._transport.close()

    def _fail(self, exc: Exception) -> None:
        if self._response is not None and not self._response.done():
            self._response.set_exception(exc)
        if self._transport is not None:
            self._transport.close()


def http_request(
    method: str, target: str, *, token: str | None = None, body: dict[str, Any] | None = None
) -> bytes:
    """The bytes of one HTTP/1.1 request."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {HOST}"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    payload = json.dumps(body).encode() if body is not None else b""
    if method != "GET":
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


# The data the requests are drawn from


@dataclass(frozen=True)
class Course:
    id: str
    slug: str
    duration: int
    pricing: str
    category: str | None


@dataclass(frozen=True)
class Enrolled:
    token: str
    course_id: str
    lesson_ids: tuple[str, ...]  # by day: lesson_ids[day - 1]


@dataclass(frozen=True)
class Samples:
    courses: list[Course]
    categories: list[str]
    words: list[str]
    enrolled: list[Enrolled]
    learner_tokens: list[str]
    enroller_tokens: list[str]
    postgres_version: str


async def sample_data(dsn: str, signing_key: SigningKey, settings: Settings) -> Samples:
    """Published courses, real title words, and learners with tokens, drawn from the database.
    The samples are ordered by md5 of ids, which the loader's seed fixes: every run draws alike."""
    conn = await asyncpg.connect(dsn)
    try:
        courses = [
            Course(
                r["id"],
                r["slug"],
                r["duration_days"],
                "premium" if r["is_premium"] else "paid" if r["price_cents"] else "free",
                r["category"],
            )
            for r in await conn.fetch(
                """
                SELECT c.id::text, c.slug, c.duration_days, c.is_premium, c.price_cents,
                       cat.slug AS category
                FROM courses c LEFT JOIN categories cat ON cat.id = c.category_id
                WHERE c.status = 'PUBLISHED' ORDER BY c.slug
                """
            )
        ]
        # Unstemmed title words that are not stop words (which would match nothing).
        words = await conn.fetch(
            """
            SELECT word FROM ts_stat($$SELECT to_tsvector('simple', title) FROM courses
                                       WHERE status = 'PUBLISHED'$$)
            WHERE word ~ '^[a-z]{3,}$' AND numnode(plainto_tsquery('english', word)) > 0
            ORDER BY word
            """
        )
        enrollments = await conn.fetch(
            """
            WITH sample AS (
                SELECT e.user_id, e.course_id
                FROM enrollments e JOIN courses c ON c.id = e.course_id
                WHERE c.status = 'PUBLISHED' AND e.status <> 'CANCELLED'
                  -- every day open under the daily schedule: the bench reads any day
                  AND e.created_at < now() - interval '22 days'
                ORDER BY md5(e.user_id::text || e.course_id::text) LIMIT $1
            )
            SELECT s.user_id, u.email, u.name, u.role, s.course_id::text,
                   array(SELECT l.id::text FROM lessons l WHERE l.course_id = s.course_id
                         ORDER BY l.day_number) AS lesson_ids
            FROM sample s JOIN users u ON u.id = s.user_id
            """,
            SAMPLED_LEARNERS,
        )
        enrollers = await conn.fetch(
            "SELECT id AS user_id, email, name, role FROM users ORDER BY md5(id::text) LIMIT $1",
            SAMPLED_ENROLLERS,
        )
        postgres_version = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()

    tokens: dict[uuid.UUID, str] = {}

    def token_for(user: asyncpg.Record) -> str:
        if user["user_id"] not in tokens:
            tokens[user["user_id"]] = mint_access_token(signing_key, settings, user)
        return tokens[user["user_id"]]

    enrolled = [Enrolled(token_for(r), r["course_id"], tuple(r["lesson_ids"])) for r in enrollments]
    return Samples(
        courses=courses,
        categories=sorted({c.category for c in courses if c.category}),
        words=[r["word"] for r in words],
        enrolled=enrolled,
        learner_tokens=list(dict.fromkeys(e.token for e in enrolled)),
        enroller_tokens=[token_for(r) for r in enrollers],
        postgres_version=postgres_version,
    )


def mint_access_token(signing_key: SigningKey, settings: Settings, user: asyncpg.Record) -> str:
    """An access token exactly as the local identity provider issues at sign-in
    (momentum_api.identity.service), signed with the server's own key, so no sign-in is needed."""
    now = int(time.time())
    claims = {
        "iss": settings.auth_issuer,
        "aud": settings.auth_audience,
        "sub": str(user["user_id"]),
        "iat": now,
        "exp": now + TOKEN_TTL_SECONDS,
        "jti": uuid.uuid4().hex,
        "email": user["email"],
        "name": user["name"],
        "token_use": "access",
        settings.auth_groups_claim: [user["role"]],
    }
    return jwt.encode(
        claims, signing_key.private_key, algorithm="RS256", headers={"kid": signing_key.kid}
    )


# The endpoints

RequestMaker = Callable[[random.Random], bytes]


@dataclass(frozen=True)
class Endpoint:
    name: str
    description: str
    make_request: RequestMaker


def endpoints(samples: Samples) -> list[Endpoint]:
    published = samples.courses
    free = [c for c in published if c.pricing == "free"]

    def catalog_list(rng: random.Random) -> bytes:
        target = f"/courses?limit=20&offset={rng.randint(0, 100)}&sort=newest"
        # About a third of the pages are filtered, as a browsing learner narrows down.
        match rng.randrange(9):
            case 0:
                target += f"&category={rng.choice(samples.categories)}"
            case 1:
                target += f"&duration={rng.choice((7, 14, 21))}"
            case 2:
                target += f"&price={rng.choice(('free', 'premium', 'paid'))}"
        return http_request("GET", target)

    def search(rng: random.Random) -> bytes:
        return http_request("GET", f"/courses?q={rng.choice(samples.words)}&limit=20")

    def course_detail(rng: random.Random) -> bytes:
        course = rng.choice(published)
        ref = course.slug if rng.random() < 0.5 else course.id
        token = rng.choice(samples.learner_tokens) if rng.random() < 0.5 else None
        return http_request("GET", f"/courses/{ref}", token=token)

    def lesson(rng: random.Random) -> bytes:
        learner = rng.choice(samples.enrolled)
        day = rng.randint(1, len(learner.lesson_ids))
        return http_request(
            "GET", f"/courses/{learner.course_id}/lessons/{day}", token=learner.token
        )

    def progress_upsert(rng: random.Random) -> bytes:
        learner = rng.choice(samples.enrolled)
        body = {
            "completed": rng.random() < 0.8,
            "add_time_seconds": 30,
            "notes": "Practised the exercise; the worked example helped.",
        }
        target = f"/me/progress/{rng.choice(learner.lesson_ids)}"
        return http_request("PUT", target, token=learner.token, body=body)

    def dashboard(rng: random.Random) -> bytes:
        return http_request("GET", "/me/dashboard", token=rng.choice(samples.learner_tokens))

    def enroll(rng: random.Random) -> bytes:
        target = f"/me/enrollments/{rng.choice(free).id}"
        return http_request("PUT", target, token=rng.choice(samples.enroller_tokens))

    return [
        Endpoint("ceiling", "GET /health/live", lambda _: http_request("GET", "/health/live")),
        Endpoint("catalog list", "GET /courses?sort=newest&offset=0..100[&filter]", catalog_list),
        Endpoint("search", "GET /courses?q=<title word>", search),
        Endpoint("course detail", "GET /courses/{slug|id} (half signed in)", course_detail),
        Endpoint("lesson + my progress", "GET /courses/{id}/lessons/{day}", lesson),
        Endpoint("progress upsert", "PUT /me/progress/{lesson_id}", progress_upsert),
        Endpoint("my dashboard", "GET /me/dashboard", dashboard),
        Endpoint("enroll", "PUT /me/enrollments/{free course id}", enroll),
    ]


# Measuring


@dataclass
class Processes:
    """The processes whose CPU time is attributed: the API servers, and the
    embedded PostgreSQL (postmaster and backends) and Redis when this run started them."""

    api: list[psutil.Process]
    postgres: psutil.Process | None
    redis: list[psutil.Process]

    @classmethod
    def find(cls, api_pids: list[int], data_dir: Path) -> Processes:
        postgres = None
        postmaster_pid = data_dir / "pg" / "postmaster.pid"
        if not os.environ.get("MOMENTUM_DATABASE_URL") and postmaster_pid.exists():
            postgres = psutil.Process(int(postmaster_pid.read_text().split()[0]))
        redis = []
        if not os.environ.get("MOMENTUM_REDIS_URL"):
            redis = [p for p in psutil.Process().children() if p.name() == "redis-server"]
        return cls([psutil.Process(pid) for pid in api_pids], postgres, redis)

    @property
    def measures_databases(self) -> bool:
        return self.postgres is not None


def _cpu_seconds(roots: list[psutil.Process]) -> float:
    """CPU time of the process trees, including children that have exited: a parent's
    children_* times hold those it reaped (PostgreSQL backends come and go with the API's
    connection pool), so the total never goes backwards."""
    total = 0.0
    for root in roots:
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for process in tree:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system + times.children_user + times.children_system
    return total


@dataclass
class CpuSnapshot:
    """CPU seconds used so far by the load generator, the API, the databases, and the whole
    machine (busy time)."""

    load_generator: float
    api: float
    databases: float
    machine_busy: float

    @classmethod
    def take(cls, processes: Processes) -> CpuSnapshot:
        databases = [processes.postgres] if processes.postgres else []
        machine = psutil.cpu_times()._asdict()
        # As psutil's own cpu_percent: guest time is already part of user time.
        idle = ("idle", "iowait", "guest", "guest_nice")
        return cls(
            load_generator=time.process_time(),
            api=_cpu_seconds(processes.api),
            databases=_cpu_seconds([*databases, *processes.redis]),
            machine_busy=sum(seconds for name, seconds in machine.items() if name not in idle),
        )


@dataclass
class Result:
    name: str
    request: str
    requests: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    error_samples: dict[str, int]
    fraction_of_ceiling: float
    # CPU cores busy on average: the load generator, the API server, the embedded PostgreSQL and
    # Redis (None with external ones: then counted in "other"), and every other process.
    cpu_cores: dict[str, float | None]
    # CPU milliseconds per request spent in the API server and in the databases.
    cpu_ms_per_request: dict[str, float | None]
    p95_pass: bool


@dataclass
class Recorder:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: Counter[str] = field(default_factory=Counter)

    def record(self, status: int, body: bytes, seconds: float) -> None:
        self.latencies_ms.append(seconds * 1000)
        if not 200 <= status < 300:
            self.errors += 1
            self.error_samples[f"{status} {body[:160].decode(errors='replace')}"] += 1


class LoadGenerator:
    def __init__(self, ports: list[int], concurrency: int, processes: Processes) -> None:
        # Connection i goes to server i mod n: an even spread, as the load balancer's.
        self.ports = [ports[slot % len(ports)] for slot in range(concurrency)]
        self.concurrency = concurrency
        self.processes = processes
        self.connections: list[HttpConnection] = []

    async def connect(self) -> None:
        self.connections = [await HttpConnection.open(port) for port in self.ports]

    def close(self) -> None:
        for connection in self.connections:
            connection.close()

    async def run(
        self, endpoint: Endpoint, index: int, warmup: float, duration: float
    ) -> tuple[Recorder, float, CpuSnapshot, CpuSnapshot]:
        """Closed loop: each connection sends its next request as soon as the previous answer
        arrives. Requests started during the warm-up are not recorded."""
        recorder = Recorder()
        started = time.perf_counter()
        measure_from = started + warmup
        stop_at = measure_from + duration
        clients = [
            self._client(slot, endpoint.make_request, random.Random(index * 1000 + slot),
                         measure_from, stop_at, recorder)
            for slot in range(self.concurrency)
        ]  # fmt: skip
        tasks = [asyncio.create_task(client) for client in clients]
        await asyncio.sleep(max(measure_from - time.perf_counter(), 0))
        before = CpuSnapshot.take(self.processes)
        await asyncio.sleep(max(stop_at - time.perf_counter(), 0))
        after = CpuSnapshot.take(self.processes)
        await asyncio.gather(*tasks)
        return recorder, duration, before, after

    async def _client(
        self,
        slot: int,
        make_request: RequestMaker,
        rng: random.Random,
        measure_from: float,
        stop_at: float,
        recorder: Recorder,
    ) -> None:
        while (sent := time.perf_counter()) < stop_at:
            request = make_request(rng)
            try:
                if not self.connections[slot].is_open:
                    self.connections[slot] = await HttpConnection.open(self.ports[slot])
                status, body = await self.connections[slot].send(request)
            except OSError as exc:  # ConnectionError included: counted, not hidden
                status, body = 0, repr(exc).encode()
            if sent >= measure_from:
                recorder.record(status, body, time.perf_counter() - sent)


def summarise(
    endpoint: Endpoint,
    recorder: Recorder,
    seconds: float,
    cpu: tuple[CpuSnapshot, CpuSnapshot],
    measures_databases: bool,
    ceiling_rps: float | None,
) -> Result:
    latencies = recorder.latencies_ms or [0.0]
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    before, after = cpu
    load_generator = (after.load_generator - before.load_generator) / seconds
    api = (after.api - before.api) / seconds
    databases = (after.databases - before.databases) / seconds
    busy = (after.machine_busy - before.machine_busy) / seconds
    rps = len(recorder.latencies_ms) / seconds
    per_request = 1000 / rps if rps else 0.0
    return Result(
        name=endpoint.name,
        request=endpoint.description,
        requests=len(recorder.latencies_ms),
        seconds=seconds,
        requests_per_second=round(rps, 1),
        p50_ms=round(cuts[49], 2),
        p95_ms=round(cuts[94], 2),
        p99_ms=round(cuts[98], 2),
        errors=recorder.errors,
        error_samples=dict(recorder.error_samples.most_common(5)),
        fraction_of_ceiling=round(rps / (ceiling_rps or rps), 3),
        cpu_cores={
            "load_generator": round(load_generator, 2),
            "api": round(api, 2),
            "databases": round(databases, 2) if measures_databases else None,
            "other": round(max(busy - load_generator - api - databases, 0.0), 2),
        },
        cpu_ms_per_request={
            "api": round(api * per_request, 2),
            "databases": round(databases * per_request, 2) if measures_databases else None,
        },
        p95_pass=cuts[94] < P95_TARGET_MS and recorder.errors == 0,
    )


async def benchmark(
    ports: list[int],
    processes: Processes,
    samples: Samples,
    args: argparse.Namespace,
    console: Console,
) -> list[Result]:
    generator = LoadGenerator(ports, args.concurrency, processes)
    await generator.connect()
    results: list[Result] = []
    try:
        for index, endpoint in enumerate(endpoints(samples)):
            if args.endpoint and endpoint.name != "ceiling" and endpoint.name not in args.endpoint:
                continue
            console.print(f"  {endpoint.name:<22} {endpoint.description}", markup=False)
            recorder, seconds, before, after = await generator.run(
                endpoint, index, args.warmup, args.duration
            )
            ceiling = results[0].requests_per_second if results else None
            results.append(
                summarise(
                    endpoint,
                    recorder,
                    seconds,
                    (before, after),
                    processes.measures_databases,
                    ceiling,
                )
            )
    finally:
        generator.close()
    return results


# The server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_until_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the API exited with status {process.returncode}; see {log}")
        try:
            connection = await HttpConnection.open(port)
            try:
                status, _ = await connection.send(http_request("GET", "/health/ready"))
            finally:
                connection.close()
            if status == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the API was not ready within 60 s; see {log}")


def start_api(env: dict[str, str], data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """One single-process API server, as an ECS task runs it."""
    server_env = {
        **os.environ,
        **env,
        "MOMENTUM_DATA_DIR": str(data_dir),
        "MOMENTUM_RATE_LIMIT_DEFAULT": UNLIMITED_RATE,
        "MOMENTUM_RATE_LIMIT_ADMIN": UNLIMITED_RATE,
        "MOMENTUM_RATE_LIMIT_SIGNIN": UNLIMITED_RATE,
    }
    command = [sys.executable, "-m", "momentum_api", "--host", HOST, "--port", str(port)]
    with log.open("wb") as output:
        return subprocess.Popen(command, env=server_env, stdout=output, stderr=subprocess.STDOUT)  # noqa: S603 - our own server


def stop_api(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# Reporting


def machine_info(postgres_version: str) -> dict[str, Any]:
    cpu_model = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                  if line.startswith("model name")]  # fmt: skip
        cpu_model = models[0] if models else cpu_model
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "postgresql": postgres_version,
    }


def print_report(
    console: Console,
    results: list[Result],
    machine: dict[str, Any],
    settings: dict[str, Any],
    dataset: dict[str, int],
) -> None:
    console.print()
    console.print(
        f"Machine: {machine['cpus']} CPUs ({machine['cpu_model']}), {machine['memory_gib']} GiB, "
        f"Python {machine['python']}, PostgreSQL {machine['postgresql']}"
    )
    console.print(
        f"Settings: {settings['workers']} API servers, {settings['concurrency']} concurrent "
        f"keep-alive clients, {settings['duration_seconds']:g} s per endpoint after "
        f"{settings['warmup_seconds']:g} s warm-up; load generator: {settings['load_generator']}"
    )
    console.print("Data: " + ", ".join(f"{count:,} {table}" for table, count in dataset.items()))
    table = Table(title="Year-one API benchmark", title_justify="left")
    table.add_column("endpoint")
    for heading in ("req/s", "P50 ms", "P95 ms", "P99 ms", "errors", "of ceiling"):
        table.add_column(heading, justify="right")
    table.add_column("CPU ms/req API", justify="right")
    table.add_column("CPU ms/req DB", justify="right")
    table.add_column(f"P95 < {P95_TARGET_MS:g} ms", justify="center")
    for r in results:
        # Green within the aim, yellow within the target, red beyond it.
        colour = "green" if r.p95_ms < P95_AIM_MS else "yellow" if r.p95_pass else "red"
        databases = r.cpu_ms_per_request["databases"]
        table.add_row(
            r.name,
            f"{r.requests_per_second:,.0f}",
            f"{r.p50_ms:.1f}",
            f"[{colour}]{r.p95_ms:.1f}[/]",
            f"{r.p99_ms:.1f}",
            f"[red]{r.errors:,}[/]" if r.errors else "0",
            f"{r.fraction_of_ceiling:.0%}",
            f"{r.cpu_ms_per_request['api']:.2f}",
            "-" if databases is None else f"{databases:.2f}",
            "[green]PASS[/]" if r.p95_pass else "[red]FAIL[/]",
        )
    console.print(table)
    console.print(
        f"PASS: P95 under {P95_TARGET_MS:g} ms and no errors (the aim is {P95_AIM_MS:g} ms). "
        "CPU ms/req: CPU time per request in the API server and in PostgreSQL + Redis."
    )
    for r in results:
        for sample, count in r.error_samples.items():
            console.print(f"  {r.name}: {count:,} x {sample}", style="red", markup=False)
    generator = max(r.cpu_cores["load_generator"] or 0.0 for r in results)
    other = max(r.cpu_cores["other"] or 0.0 for r in results)
    console.print(f"The load generator used at most {generator:.2f} CPU cores.")
    if other > OTHER_CPU_WARNING_CORES:
        console.print(
            f"Other processes on this machine used up to {other:.2f} CPU cores during the run: "
            "the figures are disturbed; rerun on a quiet machine.",
            style="yellow",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent clients")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per endpoint")
    parser.add_argument("--warmup", type=float, default=2.0, help="unrecorded seconds first")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="API server processes, one worker each (2 measured best on 2 cores: 1 leaves a "
        "core idle)",
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    parser.add_argument(
        "--endpoint", action="append", help="only this endpoint (repeatable); ceiling always runs"
    )
    args = parser.parse_args()
    # Without a terminal (make, CI logs) rich would wrap the table at 80 columns.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 150)
    data_dir = args.data_dir.resolve()

    with year_one_database(data_dir) as (env, dataset):
        # As the server will read them (same environment), for the tokens' issuer and audience.
        settings = Settings(data_dir=data_dir)
        signing_key = load_or_create(data_dir / "identity" / "signing-key.pem")
        samples = asyncio.run(
            sample_data(asyncpg_dsn(env["MOMENTUM_DATABASE_URL"]), signing_key, settings)
        )
        ports = [free_port() for _ in range(args.workers)]
        logs = [data_dir / f"api-bench-server-{n}.log" for n in range(args.workers)]
        servers = [
            start_api(env, data_dir, port, log) for port, log in zip(ports, logs, strict=True)
        ]
        try:
            for port, server, log in zip(ports, servers, logs, strict=True):
                asyncio.run(wait_until_ready(port, server, log))
            console.print(
                f"API servers on {', '.join(f'http://{HOST}:{port}' for port in ports)} "
                f"(logs in {data_dir}); measuring:"
            )
            processes = Processes.find([server.pid for server in servers], data_dir)
            results = asyncio.run(benchmark(ports, processes, samples, args, console))
        finally:
            for server in servers:
                stop_api(server)

    machine = machine_info(samples.postgres_version)
    run_settings = {
        "workers": args.workers,
        "concurrency": args.concurrency,
        "duration_seconds": args.duration,
        "warmup_seconds": args.warmup,
        "load_generator": "asyncio + httptools, HTTP/1.1 keep-alive, one connection per client, "
        "clients spread evenly over the servers",
        "rate_limits": UNLIMITED_RATE,
    }
    print_report(console, results, machine, run_settings, dataset)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "settings": run_settings,
        "dataset": dataset,
        "p95_target_ms": P95_TARGET_MS,
        "p95_aim_ms": P95_AIM_MS,
        "endpoints": [asdict(r) for r in results],
    }
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
