"""The local renderer produces a real MP4 paced by the narration, and the local provider serves it
like HeyGen would: asynchronously, idempotently, as a file stream."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

import imageio_ffmpeg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_domain.catalog.models import VideoStatus
from momentum_domain.storage import LocalStorage
from momentum_video_worker.providers import LocalRenderProvider, VideoState
from momentum_video_worker.rendering import render_video, slides_for, word_count
from tests.video.conftest import (
    SCRIPT,
    MakeVideos,
    WorkerFactory,
    lessons_of,
    running,
    wait_for_status,
)

WORDS_PER_MINUTE = 150


def probe(path: Path) -> str:
    """What ffmpeg itself says about the file."""
    result = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stderr


def video_stream_seconds(path: Path) -> float:
    """How long the picture lasts: decode the video stream alone and read the final time."""
    decode_video_only = ["-hide_banner", "-i", str(path), "-map", "0:v", "-f", "null", "-"]
    result = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), *decode_video_only],
        capture_output=True,
        text=True,
        check=True,
    )
    times = re.findall(r"time=(\d+):(\d\d):(\d\d\.\d+)", result.stderr)
    hours, minutes, seconds = times[-1]
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def duration_of(report: str) -> float:
    match = re.search(r"Duration: (\d+):(\d\d):(\d\d\.\d+)", report)
    assert match is not None, report
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


# One long paragraph (a single slide after the title), and several sections.
LONG_PARAGRAPH = " ".join(["Practise one small habit every day and notice what changes."] * 8)


@pytest.mark.parametrize("script", [SCRIPT, LONG_PARAGRAPH], ids=["sections", "one-paragraph"])
def test_rendered_video_is_an_mp4_as_long_as_its_narration(tmp_path: Path, script: str) -> None:
    output = tmp_path / "lesson.mp4"

    rendered = render_video(
        "Knife skills, day 1",
        script,
        output,
        words_per_minute=WORDS_PER_MINUTE,
        work_dir=tmp_path / "work",
    )

    report = probe(output)
    expected = word_count(script) / WORDS_PER_MINUTE * 60  # silent narration: no espeak-ng here
    assert output.read_bytes()[4:8] == b"ftyp"
    assert re.search(r"Video: h264 .* 1280x720", report), report
    assert "Audio: aac" in report
    assert duration_of(report) == pytest.approx(expected, abs=0.3)
    assert video_stream_seconds(output) == pytest.approx(expected, abs=0.5)  # slides throughout
    assert rendered.duration_seconds == pytest.approx(duration_of(report), abs=0.01)
    assert not rendered.narrated


def test_slides_follow_the_script_sections() -> None:
    slides = slides_for("Title", SCRIPT)
    many = slides_for("Title", "\n\n".join(f"Paragraph {n} here." for n in range(40)))

    assert [slide.heading for slide in slides] == ["Title", "Welcome", "Welcome", "Practice"]
    assert slides[3].body.startswith("Slice an onion")
    assert len(many) <= 12
    assert "Paragraph 39" in many[-1].body


async def test_local_provider_renders_in_the_background(tmp_path: Path) -> None:
    provider = LocalRenderProvider(tmp_path, words_per_minute=WORDS_PER_MINUTE)
    try:
        video_id = await provider.submit(SCRIPT, "Day 1", idempotency_key="k-1", callback_id="c")
        again = await provider.submit(SCRIPT, "Day 1", idempotency_key="k-1", callback_id="c")
        first = await provider.status(video_id)
        for _ in range(200):
            status = await provider.status(video_id)
            if status.state is not VideoState.PROCESSING:
                break
            await asyncio.sleep(0.05)
        chunks = [chunk async for chunk in provider.download(video_id, status.video_url or "")]
    finally:
        await provider.aclose()

    assert again == video_id
    assert first.state is VideoState.PROCESSING
    assert status.state is VideoState.COMPLETED, status.error
    assert status.duration_seconds == pytest.approx(word_count(SCRIPT) / 150 * 60, abs=0.3)
    assert b"".join(chunks) == (tmp_path / f"{video_id}.mp4").read_bytes()
    await provider.release(video_id)
    assert not (tmp_path / f"{video_id}.mp4").exists()
    lost = await provider.status(video_id)
    assert lost.state is VideoState.FAILED
    assert "lost" in (lost.error or "")


async def test_worker_with_the_local_provider_stores_a_playable_video(
    make_videos: MakeVideos,
    make_worker: WorkerFactory,
    storage: LocalStorage,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    provider = LocalRenderProvider(tmp_path / "renders", words_per_minute=WORDS_PER_MINUTE)
    ids = await make_videos(1, provider="local")

    try:
        async with running(make_worker(provider=provider)):
            [video] = await wait_for_status(sessions, ids, within=30)
    finally:
        await provider.aclose()

    [lesson] = await lessons_of(sessions, [video])
    assert video.status.value == "COMPLETED", video.error
    assert video.provider == "local"
    path = storage.path_for(video.storage_key or "")
    assert "Video: h264" in probe(path)
    assert lesson.video_status is VideoStatus.READY
    assert lesson.video_url == f"/media/{video.storage_key}"
    assert lesson.video_duration_seconds == round(duration_of(probe(path)))
    assert list((tmp_path / "renders").glob("*.mp4")) == []  # the render was cleaned up
