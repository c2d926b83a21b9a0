"""The video worker benchmark: drain 1,000 pending lesson videos through HeyGen-like latency.

    python bench/video_bench.py [--videos 1000] [--limit 10] [--replicas 2]
                                [--min-delay 0.05] [--max-delay 0.5] [--poll-interval 0.2]

It starts PostgreSQL and Redis (embedded, in ``--data-dir``, unless MOMENTUM_DATABASE_URL /
MOMENTUM_REDIS_URL are set), recreates a database of its own, migrates it and inserts ``--videos``
pending video requests (one per lesson). A fake HeyGen (``momentum_dev.fakes.heygen``, over real
HTTP on 127.0.0.1) finishes each render after a random delay. ``--replicas`` real worker processes
(``python -m momentum_video_worker``, exactly as the container runs it) drain the queue into a
local media folder, sharing the provider limit ``--limit``; they are stopped with SIGTERM when
every video is stored.

It prints the time to drain, the peak number of videos rendering at the provider at once (PASS
only if never above the limit), status calls per video, and the largest worker's peak memory,
and writes the same to bench/results/video.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_dev.embedded import embedded_stack
from momentum_dev.fakes.heygen import API_KEY, AVATAR_ID, VOICE_ID, FakeHeyGen
from momentum_domain.catalog.models import Course, CourseStatus, Lesson, VideoStatus
from momentum_domain.config import REPO_ROOT, Settings
from momentum_domain.kit.db import create_engine, create_sessionmaker
from momentum_domain.kit.unit_of_work import transaction
from momentum_domain.migrations import upgrade
from momentum_domain.videos.models import LessonVideoScript

DEFAULT_DATA_DIR = REPO_ROOT / ".momentum" / "bench-video"
RESULTS_PATH = REPO_ROOT / "bench" / "results" / "video.json"
DATABASE = "momentum_bench_video"
DAYS_PER_COURSE = 21
VIDEO_BYTES = 32 * 1024
SCRIPT = (
    "Today you will practise one small habit. Read the prompt, take two minutes, and write down "
    "what you noticed. Tomorrow builds on it."
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--videos", type=int, default=1000)
    parser.add_argument("--limit", type=int, default=10, help="provider concurrency limit")
    parser.add_argument("--replicas", type=int, default=2, help="worker processes")
    parser.add_argument("--min-delay", type=float, default=0.05, help="fastest render, seconds")
    parser.add_argument("--max-delay", type=float, default=0.5, help="slowest render, seconds")
    parser.add_argument("--poll-interval", type=float, default=0.2)
    parser.add_argument("--timeout", type=float, default=600, help="give up after, seconds")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    return parser.parse_args()


async def recreate_database(server_url: str) -> str:
    url = Settings.model_validate({"database_url": server_url}).database_url
    admin = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    return make_url(url).set(database=DATABASE).render_as_string(hide_password=False)


async def insert_pending_videos(sessions: async_sessionmaker[AsyncSession], count: int) -> None:
    async with transaction(sessions) as session:
        for first in range(0, count, DAYS_PER_COURSE):
            number = first // DAYS_PER_COURSE
            course = Course(
                slug=f"bench-course-{number}",
                title=f"Bench course {number}",
                duration_days=DAYS_PER_COURSE,
                status=CourseStatus.DRAFT,
            )
            session.add(course)
            await session.flush()
            lessons = [
                Lesson(
                    course_id=course.id,
                    day_number=day,
                    title=f"{course.title}, day {day}",
                    video_status=VideoStatus.PENDING,
                )
                for day in range(1, min(DAYS_PER_COURSE, count - first) + 1)
            ]
            session.add_all(lessons)
            await session.flush()
            session.add_all(
                LessonVideoScript(lesson_id=lesson.id, script=SCRIPT, provider="heygen")
                for lesson in lessons
            )


async def video_counts(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessions() as session:
        rows = await session.execute(
            select(LessonVideoScript.status, func.count()).group_by(LessonVideoScript.status)
        )
        return {status.value: count for status, count in rows.all()}


def start_workers(count: int, env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            [sys.executable, "-m", "momentum_video_worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


async def drain(
    args: argparse.Namespace, fake: FakeHeyGen, database_url: str, worker_env: dict[str, str]
) -> dict[str, Any]:
    engine = create_engine(Settings(database_url=database_url), application_name="momentum-bench")
    sessions = create_sessionmaker(engine)
    try:
        await insert_pending_videos(sessions, args.videos)
        print(f"{args.videos} pending videos; starting {args.replicas} workers...", flush=True)
        started = time.monotonic()
        workers = start_workers(args.replicas, worker_env)
        try:
            while True:
                counts = await video_counts(sessions)
                done = counts.get("COMPLETED", 0) + counts.get("FAILED", 0)
                if done >= args.videos:
                    break
                if time.monotonic() - started > args.timeout:
                    raise SystemExit(f"gave up after {args.timeout:.0f} s: {counts}")
                if any(worker.poll() is not None for worker in workers):
                    raise SystemExit("a worker exited early")
                await asyncio.sleep(0.2)
            drained = time.monotonic() - started
        finally:
            await asyncio.to_thread(stop_workers, workers)
    finally:
        await engine.dispose()
    # ru_maxrss of the waited-for children: the largest worker's peak resident set, in KiB.
    peak_rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    polls = Counter(
        request.path.removeprefix("/v3/videos/")
        for request in fake.requests_to("GET", "/v3/videos/")
    )
    per_video = [polls[video_id] for video_id in fake.videos]
    return {
        "parameters": {
            "videos": args.videos,
            "provider_limit": args.limit,
            "replicas": args.replicas,
            "render_seconds": [args.min_delay, args.max_delay],
            "poll_interval_seconds": args.poll_interval,
            "video_bytes": VIDEO_BYTES,
        },
        "drain_seconds": round(drained, 2),
        "videos_per_second": round(args.videos / drained, 2),
        "peak_concurrency": fake.peak_rendering,
        "concurrency_within_limit": fake.peak_rendering <= args.limit,
        "status_calls_per_video": {
            "mean": round(statistics.fmean(per_video), 2),
            "p50": statistics.median(per_video),
            "max": max(per_video),
        },
        "videos_created": len(fake.videos),
        "duplicate_submissions": sum(n - 1 for n in fake.creations.values() if n > 1),
        "downloads": sum(fake.downloads.values()),
        "outcome": counts,
        "worker_peak_rss_mib": round(peak_rss_mib, 1),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = args.data_dir.resolve()
    media_dir = data_dir / "media"
    shutil.rmtree(media_dir, ignore_errors=True)
    with embedded_stack(data_dir) as stack_env, FakeHeyGen().running() as fake:
        fake.render_seconds = (args.min_delay, args.max_delay)
        fake.video_size = VIDEO_BYTES
        database_url = asyncio.run(recreate_database(stack_env["MOMENTUM_DATABASE_URL"]))
        upgrade(database_url)  # runs its own event loop
        worker_env = {
            **os.environ,
            **stack_env,
            "MOMENTUM_DATABASE_URL": database_url,
            "MOMENTUM_DATA_DIR": str(data_dir / "worker"),
            "MOMENTUM_STORAGE_BACKEND": "local",
            "MOMENTUM_STORAGE_LOCAL_DIR": str(media_dir),
            "MOMENTUM_VIDEO_PROVIDER": "heygen",
            "MOMENTUM_HEYGEN_BASE_URL": fake.base_url,
            "MOMENTUM_HEYGEN_API_KEY": API_KEY,
            "MOMENTUM_HEYGEN_AVATAR_ID": AVATAR_ID,
            "MOMENTUM_HEYGEN_VOICE_ID": VOICE_ID,
            "MOMENTUM_HEYGEN_MAX_CONCURRENT_VIDEOS": str(args.limit),
            "MOMENTUM_VIDEO_POLL_INTERVAL_SECONDS": str(args.poll_interval),
            "MOMENTUM_OTEL_EXPORTER": "none",
        }
        return asyncio.run(drain(args, fake, database_url, worker_env))


def report(result: dict[str, Any]) -> None:
    params = result["parameters"]
    limit = params["provider_limit"]
    verdict = "PASS" if result["concurrency_within_limit"] else "FAIL"
    calls = result["status_calls_per_video"]
    low, high = params["render_seconds"]
    rows = [
        ("videos", f"{params['videos']} {result['outcome']}"),
        ("workers", f"{params['replicas']} processes sharing a provider limit of {limit}"),
        ("fake render time", f"{low}-{high} s; poll interval {params['poll_interval_seconds']} s"),
        ("time to drain", f"{result['drain_seconds']} s ({result['videos_per_second']} videos/s)"),
        ("peak concurrency", f"{result['peak_concurrency']} of {limit} {verdict}"),
        ("status calls/video", f"mean {calls['mean']}, median {calls['p50']}, max {calls['max']}"),
        (
            "submissions",
            f"{result['videos_created']} created, {result['duplicate_submissions']} duplicate, "
            f"{result['downloads']} downloads",
        ),
        ("worker peak memory", f"{result['worker_peak_rss_mib']} MiB RSS (largest worker)"),
    ]
    width = max(len(name) for name, _ in rows)
    print()
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print()


def main() -> int:
    args = parse_args()
    result = run(args)
    report(result)
    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_PATH.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Wrote {RESULTS_PATH.relative_to(REPO_ROOT)}")
    return 0 if result["concurrency_within_limit"] else 1


if __name__ == "__main__":
    sys.exit(main())
