"""A PostgreSQL restart is weather, not a bug: while the database is down every request that
needs it answers 503 with Retry-After (never 500), readiness names the database, and once it is
back the same app serves again without a restart.

The test restarts a PostgreSQL of its own (pgserver's binaries), never the shared one.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from momentum_api.app import create_app
from momentum_api.problems import database_unreachable
from momentum_domain.catalog.authoring import insert_course, insert_lesson, transition
from momentum_domain.catalog.inputs import NewCourse, NewLesson
from momentum_domain.catalog.models import CourseStatus
from momentum_domain.config import Settings
from momentum_domain.kit.db import create_engine, create_sessionmaker
from momentum_domain.migrations import upgrade
from momentum_domain.users.models import Role
from momentum_domain.users.service import users
from tests.fixtures.app import AppClient, serve

DEADLINE_SECONDS = 25.0
CONCURRENT = 4


@pytest.fixture(scope="module")
def own_server() -> Iterator[Any]:
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pgserver

    # Not under pytest's base temp: as root, pgserver runs the server as another user (see
    # test_database_credentials).
    parent = Path(tempfile.mkdtemp(prefix="momentum-restart-"))
    server: Any = pgserver.get_server(parent / "pg", cleanup_mode="delete")  # type: ignore[attr-defined]
    yield server
    server.cleanup()
    shutil.rmtree(parent, ignore_errors=True)


def _stop(server: Any) -> None:
    import pgserver

    # Fast shutdown: the backends are terminated (AdminShutdown), as in a real restart.
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)


def _start(server: Any) -> None:
    server.ensure_postgres_running()


@pytest.fixture
def restart_settings(own_server: Any, redis_url: str, tmp_path: Path) -> Settings:
    url = Settings.model_validate({"database_url": str(own_server.get_uri())}).database_url
    url = make_url(url).set(database="postgres").render_as_string(hide_password=False)
    with ThreadPoolExecutor(max_workers=1) as pool:  # the migration runner owns its loop
        pool.submit(upgrade, url).result()
    return Settings(
        env="test",
        database_url=url,
        redis_url=redis_url,
        data_dir=tmp_path / "data",
        rate_limit_default="100000/60",
    )


@pytest.fixture
async def restart_client(restart_settings: Settings) -> AsyncIterator[AppClient]:
    async with serve(create_app(restart_settings)) as client:
        yield client


async def _learner_with_a_lesson(settings: Settings, client: AppClient) -> tuple[str, str, str]:
    """A learner's token, a free course they are enrolled in, and its first lesson."""
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            user = await users.create_local(
                session,
                email="restart@example.com",
                password="correct horse battery staple",
                name="Restart",
                role=Role.FREE,
            )
            course = await insert_course(
                session, NewCourse(title="Weather", duration_days=7), created_by=None
            )
            lessons = [
                await insert_lesson(
                    session,
                    course,
                    NewLesson(day_number=day, title=f"Day {day}", content_markdown="# Day"),
                )
                for day in range(1, 8)
            ]
            await transition(session, course, CourseStatus.PUBLISHED)
    finally:
        await engine.dispose()
    token: str = client.app.state.identity.issue_access_token(user)
    headers = {"Authorization": f"Bearer {token}"}
    enrolled = await client.put(f"/me/enrollments/{course.id}", headers=headers)
    assert enrolled.status_code in (200, 201), enrolled.text
    return token, str(course.id), str(lessons[0].id)


async def test_requests_during_a_database_restart_get_503_then_succeed(
    own_server: Any, restart_settings: Settings, restart_client: AppClient
) -> None:
    client = restart_client
    token, course_id, lesson_id = await _learner_with_a_lesson(restart_settings, client)
    headers = {"Authorization": f"Bearer {token}"}
    statuses: list[int] = []
    acknowledged_seconds = attempted_seconds = 0
    stopped = asyncio.Event()
    back_at: float | None = None
    first_success_after_restart: float | None = None

    async def read(path: str) -> None:
        response = await client.get(path, headers=headers)
        check(response)

    async def write() -> None:
        nonlocal acknowledged_seconds, attempted_seconds
        attempted_seconds += 1
        response = await client.put(
            f"/me/progress/{lesson_id}", json={"add_time_seconds": 1}, headers=headers
        )
        check(response)
        if response.status_code == 200:
            acknowledged_seconds += 1

    def check(response: Any) -> None:
        nonlocal first_success_after_restart
        statuses.append(response.status_code)
        if response.status_code == 503:
            assert stopped.is_set(), "503 while the database was up"
            assert 1 <= int(response.headers["Retry-After"]) <= 30
            assert response.headers["content-type"].startswith("application/problem+json")
            assert "database" in response.json()["detail"].lower()
        else:
            assert response.status_code == 200, response.text
            if back_at is not None and first_success_after_restart is None:
                first_success_after_restart = time.monotonic()

    async def traffic(until: asyncio.Event) -> None:
        # Requests keep arriving, CONCURRENT at a time, through the stop and the start.
        while not until.is_set():
            await asyncio.gather(
                *(read(path) for path in ("/me", "/me/dashboard")),
                *(write() for _ in range(CONCURRENT)),
            )

    done = asyncio.Event()
    load = asyncio.create_task(traffic(done))
    try:
        await asyncio.sleep(0.5)  # the pool is warm: its connections are the ones the stop kills
        stopped.set()
        await asyncio.to_thread(_stop, own_server)
        await asyncio.sleep(2)
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": "unavailable", "redis": "ok"}
        assert int(ready.headers["Retry-After"]) > 0
    finally:
        await asyncio.to_thread(_start, own_server)
    back_at = time.monotonic()
    deadline = back_at + DEADLINE_SECONDS
    while first_success_after_restart is None:
        assert time.monotonic() < deadline, "the app did not recover after the restart"
        await asyncio.sleep(0.1)
    unavailable = statuses.count(503)
    assert unavailable, "no request arrived while the database was down"
    # Once a request succeeded, none fails: the pool has reconnected.
    stopped.clear()
    statuses.clear()
    await asyncio.sleep(1)
    done.set()
    await load
    assert statuses
    assert set(statuses) == {200}
    assert (await client.get("/health/ready")).status_code == 200

    # No acknowledged write is lost; nothing is counted that was never asked for.
    progress = await client.get(f"/me/enrollments/{course_id}", headers=headers)
    assert progress.status_code == 200, progress.text
    stored = next(
        item["time_spent_seconds"]
        for item in progress.json()["lessons"]
        if item["lesson_id"] == lesson_id
    )
    assert acknowledged_seconds <= stored <= attempted_seconds
    print(
        f"database restart: {unavailable} answers 503 while down, first 200 "
        f"{first_success_after_restart - back_at:.2f} s after PostgreSQL accepted connections"
    )


async def test_a_bad_statement_is_not_mistaken_for_an_outage(restart_settings: Settings) -> None:
    engine = create_engine(restart_settings)
    try:
        async with engine.connect() as connection:
            with pytest.raises(DBAPIError) as raised:
                await connection.execute(text("SELEC 1"))
    finally:
        await engine.dispose()
    assert not database_unreachable(raised.value)
