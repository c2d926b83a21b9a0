"""The local renderer produces a real MP4 paced by the narration, and the local provider serves it
like HeyGen would: asynchronously, idempotently, as a file stream."""

from __future__ import annotations

import array
import asyncio
import logging
import math
import re
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import imageio_ffmpeg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_domain.catalog.models import VideoStatus
from momentum_domain.kit.storage import LocalStorage
from momentum_video_worker import narration
from momentum_video_worker.narration import EspeakNarrator
from momentum_video_worker.providers import LocalRenderProvider, RenderLost, VideoState
from momentum_video_worker.rendering import (
    BACKGROUND,
    BODY_TOP,
    HEIGHT,
    Slide,
    _draw,
    fit_body,
    render_video,
    slides_for,
    word_count,
)
from tests.fixtures.videos import (
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


@pytest.fixture
def no_espeak_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH without any espeak-ng binary, as on a fresh clone: only the shipped library speaks."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert shutil.which("espeak-ng") is None


@pytest.fixture
def no_voice(no_espeak_binary: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither the binary nor the espeakng-loader package: importing it fails, as if absent."""
    monkeypatch.setattr(narration, "_shipped", [])
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)


def wav_rms_and_seconds(path: Path) -> tuple[float, float]:
    with wave.open(str(path), "rb") as audio:
        assert (audio.getnchannels(), audio.getsampwidth()) == (1, 2)
        samples = array.array("h", audio.readframes(audio.getnframes()))
        seconds = audio.getnframes() / audio.getframerate()
    return math.sqrt(sum(s * s for s in samples) / max(len(samples), 1)), seconds


def test_shipped_library_speaks_without_an_espeak_binary(
    tmp_path: Path, no_espeak_binary: None
) -> None:
    narrator = EspeakNarrator()
    output = tmp_path / "sentence.wav"

    assert narrator.voice == "libespeak-ng (espeakng-loader)"
    assert narrator.narrate("Slice the onion thinly, then sweat it.", output, WORDS_PER_MINUTE)

    rms, seconds = wav_rms_and_seconds(output)
    assert rms > 500  # speech; silence is 0
    assert 1.0 < seconds < 10.0


@pytest.mark.parametrize("script", [SCRIPT, LONG_PARAGRAPH], ids=["sections", "one-paragraph"])
def test_rendered_video_is_an_mp4_as_long_as_its_narration(
    tmp_path: Path, script: str, no_espeak_binary: None
) -> None:
    output = tmp_path / "lesson.mp4"

    rendered = render_video(
        "Knife skills, day 1",
        script,
        output,
        words_per_minute=WORDS_PER_MINUTE,
        work_dir=tmp_path / "work",
    )

    report = probe(output)
    rms, expected = wav_rms_and_seconds(tmp_path / "work" / "narration.wav")
    assert rendered.narrated
    assert rms > 500
    assert output.read_bytes()[4:8] == b"ftyp"
    assert re.search(r"Video: h264 .* 1280x720", report), report
    assert "Audio: aac" in report
    assert duration_of(report) == pytest.approx(expected, abs=0.3)
    assert video_stream_seconds(output) == pytest.approx(expected, abs=0.5)  # slides throughout
    assert rendered.duration_seconds == pytest.approx(duration_of(report), abs=0.01)


async def test_without_a_voice_the_provider_warns_once_and_paces_silence(
    tmp_path: Path, no_voice: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        provider = LocalRenderProvider(tmp_path, words_per_minute=WORDS_PER_MINUTE)
        try:
            ids = [
                await provider.submit(SCRIPT, "Day 1", idempotency_key=f"k-{n}", callback_id="c")
                for n in range(2)
            ]
            statuses = []
            for video_id in ids:
                for _ in range(400):
                    status = await provider.status(video_id)
                    if status.state is not VideoState.PROCESSING:
                        break
                    await asyncio.sleep(0.05)
                statuses.append(status)
        finally:
            await provider.aclose()

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert provider.voice is None
    assert len(warnings) == 1, warnings
    assert "SILENT" in warnings[0]
    for status in statuses:
        assert status.state is VideoState.COMPLETED, status.error
        silent = word_count(SCRIPT) / WORDS_PER_MINUTE * 60
        assert status.duration_seconds == pytest.approx(silent, abs=0.3)


def test_a_long_paragraph_fits_its_slide_instead_of_being_cut() -> None:
    text = " ".join(["Practise one small habit every day and notice what changes."] * 30)

    short = fit_body("Practise one small habit every day.")
    fitted = fit_body(text)
    image = _draw(Slide("Habits", text, word_count(text)), is_title=False)

    assert short.size == 30
    assert not short.cut
    assert 16 <= fitted.size < 30
    assert not fitted.cut
    assert " ".join(fitted.lines) == text  # every word drawn, none cut off with "…"
    assert "…" not in " ".join(fitted.lines)
    # Nothing drawn in the bottom margin: the text stays inside the slide's body box.
    bottom = image.crop((0, HEIGHT - 40, image.width, HEIGHT))
    assert bottom.getcolors() == [(bottom.width * bottom.height, BACKGROUND)]
    body = image.crop((0, BODY_TOP, image.width, HEIGHT - 40))
    assert len(body.getcolors(body.width * body.height) or []) > 1


def test_slides_follow_the_script_sections() -> None:
    slides = slides_for("Title", SCRIPT)
    many = slides_for("Title", "\n\n".join(f"Paragraph {n} here." for n in range(40)))

    assert [slide.heading for slide in slides] == ["Title", "Welcome", "Welcome", "Practice"]
    assert slides[3].body.startswith("Slice an onion")
    assert len(many) <= 12
    assert "Paragraph 39" in many[-1].body


async def test_local_provider_renders_in_the_background(tmp_path: Path) -> None:
    # Narrated by whichever espeak-ng is here (the shipped library at the least): its length.
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
    assert status.duration_seconds == pytest.approx(
        duration_of(probe(tmp_path / f"{video_id}.mp4")), abs=0.01
    )
    assert b"".join(chunks) == (tmp_path / f"{video_id}.mp4").read_bytes()
    await provider.release(video_id)
    assert not (tmp_path / f"{video_id}.mp4").exists()
    with pytest.raises(RenderLost):  # nothing renders it any more: submit it again
        await provider.status(video_id)


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
