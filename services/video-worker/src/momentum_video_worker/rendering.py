"""The local renderer: a lesson video made of slides (the title, then the script's sections)
over a narration track, muxed into an MP4 by the ffmpeg binary that ships with imageio-ffmpeg.

Narration comes from espeak-ng (the binary, or the library the espeakng-loader wheel ships); only
if neither loads is the track silence as long as the narration would take to read at the
configured words per minute, so the video still paces the script. Slide text is fitted to the
slide (smaller type, more lines) rather than cut. Everything here is blocking: callers run it in
a thread.
"""

from __future__ import annotations

import re
import subprocess
import wave
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import imageio_ffmpeg
from PIL import Image, ImageDraw, ImageFont

from momentum_domain.kit.text_wrap import wrap_text
from momentum_video_worker.narration import EspeakNarrator, Narrator

WIDTH, HEIGHT = 1280, 720
# Slides are still images: a low frame rate and a keyframe every ten seconds keep encoding fast
# and files small (about 2 MB for three minutes) while seeking stays quick.
FPS = 5
KEYFRAME_INTERVAL = 10 * FPS
MAX_SLIDES = 12
MIN_DURATION_SECONDS = 2.0
FFMPEG_TIMEOUT_SECONDS = 600
BACKGROUND = (17, 24, 39)
ACCENT = (99, 102, 241)
TEXT = (243, 244, 246)
MARGIN = 80
TEXT_WIDTH = WIDTH - 2 * MARGIN
BODY_TOP = 160
_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")


class RenderError(Exception):
    pass


@dataclass(frozen=True)
class Slide:
    heading: str
    body: str
    words: int


@dataclass(frozen=True)
class RenderedVideo:
    path: Path
    duration_seconds: float
    narrated: bool


def ffmpeg_exe() -> str:
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def word_count(text: str) -> int:
    return len(re.findall(r"\w+", text))


def slides_for(title: str, script: str, *, max_slides: int = MAX_SLIDES) -> list[Slide]:
    """The title slide, then the script's paragraphs (a markdown heading starts a new section),
    merged in reading order so there are at most ``max_slides`` slides."""
    sections: list[tuple[str, list[str]]] = [("", [])]
    for block in re.split(r"\n\s*\n", script.strip()):
        lines = [line.strip() for line in block.strip().splitlines() if line.strip()]
        if not lines:
            continue
        if lines[0].startswith("#"):
            sections.append((lines[0].lstrip("#").strip(), []))
            lines = lines[1:]
        if lines:
            sections[-1][1].append(" ".join(lines))
    paragraphs = [(heading, text) for heading, texts in sections for text in texts]
    per_slide = max(1, -(-len(paragraphs) // (max_slides - 1)))
    slides = [Slide(title, "", 0)]
    for start in range(0, len(paragraphs), per_slide):
        group = paragraphs[start : start + per_slide]
        body = " ".join(text for _, text in group)
        slides.append(Slide(group[0][0] or title, body, word_count(body)))
    return slides


def render_video(
    title: str,
    script: str,
    output: Path,
    *,
    words_per_minute: int,
    work_dir: Path,
    narrator: Narrator | None = None,
) -> RenderedVideo:
    work_dir.mkdir(parents=True, exist_ok=True)
    slides = slides_for(title, script)
    narration = work_dir / "narration.wav"
    narrated = (narrator or EspeakNarrator()).narrate(script, narration, words_per_minute)
    if narrated:
        duration = max(_wav_duration(narration), MIN_DURATION_SECONDS)
    else:
        duration = max(word_count(script) / words_per_minute * 60, MIN_DURATION_SECONDS)
    concat = _write_slides(slides, duration, work_dir)
    audio = (
        ["-i", str(narration)]
        if narrated
        else ["-f", "lavfi", "-i", "anullsrc=channel_layout=mono:sample_rate=22050"]
    )
    # In the scratch folder, so removing that folder removes every trace of an unfinished render.
    partial = work_dir / f"{output.stem}.partial.mp4"
    _run(
        [
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "concat", "-safe", "0", "-i", str(concat),
            *audio,
            "-map", "0:v", "-map", "1:a",
            "-t", f"{duration:.3f}",
            # The fps filter (not -r) repeats each still until the next one: with -r, a slide
            # longer than the rest of the output is dropped. Converting first halves the work.
            "-vf", f"format=yuv420p,fps={FPS}", "-g", str(KEYFRAME_INTERVAL),
            "-c:v", "libx264", "-preset", "veryfast", "-tune", "stillimage",
            "-c:a", "aac", "-b:a", "64k",
            "-movflags", "+faststart",
            str(partial),
        ]
    )  # fmt: skip
    partial.replace(output)
    return RenderedVideo(output, probe_duration(output), narrated)


def probe_duration(path: Path) -> float:
    """The container's duration as ffmpeg reports it (``ffmpeg -i`` prints it on stderr)."""
    result = subprocess.run(  # noqa: S603 - a fixed binary with our own arguments
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = _DURATION.search(result.stderr)
    if match is None:
        raise RenderError(f"ffmpeg reports no duration for {path.name}: {result.stderr[-300:]}")
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _wav_duration(path: Path) -> float:
    with wave.open(str(path), "rb") as audio:
        return audio.getnframes() / audio.getframerate()


def _write_slides(slides: list[Slide], duration: float, work_dir: Path) -> Path:
    """Draw each slide and write an ffmpeg concat list giving each its share of the narration:
    the title a fixed short moment, the rest in proportion to their words."""
    title_seconds = min(3.0, duration / 4) if len(slides) > 1 else duration
    words = sum(slide.words for slide in slides[1:]) or 1
    lines = []
    for index, slide in enumerate(slides):
        image = work_dir / f"slide{index:03d}.png"
        _draw(slide, is_title=index == 0).save(image)
        seconds = title_seconds if index == 0 else (duration - title_seconds) * slide.words / words
        lines += [f"file '{image.name}'", f"duration {max(seconds, 0.2):.3f}"]
    # The concat demuxer ignores the last entry's duration unless the file is listed again.
    lines.append(f"file 'slide{len(slides) - 1:03d}.png'")
    concat = work_dir / "slides.txt"
    concat.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return concat


def _draw(slide: Slide, *, is_title: bool) -> Image.Image:
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, WIDTH, 12), fill=ACCENT)
    if is_title:
        title = fit_text(slide.heading, width=TEXT_WIDTH, height=560, max_size=64, min_size=32)
        draw.multiline_text(
            (WIDTH / 2, HEIGHT / 2),
            "\n".join(title.lines),
            font=title.font,
            fill=TEXT,
            anchor="mm",
            align="center",
            spacing=title.spacing,
        )
        return image
    heading = fit_text(slide.heading, width=TEXT_WIDTH, height=80, max_size=44, min_size=24)
    draw.multiline_text(
        (MARGIN, 60),
        "\n".join(heading.lines),
        font=heading.font,
        fill=ACCENT,
        spacing=heading.spacing,
    )
    body = fit_body(slide.body)
    draw.multiline_text(
        (MARGIN, BODY_TOP), "\n".join(body.lines), font=body.font, fill=TEXT, spacing=body.spacing
    )
    return image


@dataclass(frozen=True)
class FittedText:
    size: int
    lines: tuple[str, ...]
    spacing: int
    cut: bool  # True only when the text did not fit even at the smallest size

    @property
    def font(self) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
        return ImageFont.load_default(size=self.size)


def fit_body(text: str) -> FittedText:
    return fit_text(text, width=TEXT_WIDTH, height=HEIGHT - BODY_TOP - 40, max_size=30, min_size=16)


def fit_text(text: str, *, width: int, height: int, max_size: int, min_size: int) -> FittedText:
    """The largest font size (stepping down from ``max_size``) at which ``text``, wrapped to
    ``width`` pixels, stays within ``height``; cut with "…" only if even ``min_size`` overflows."""
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    size = max_size
    while True:
        font = ImageFont.load_default(size=size)
        spacing = max(2, size // 3)
        lines = wrap_text(text, partial(draw.textlength, font=font), width, None) or [""]
        if _text_height(draw, lines, font, spacing) <= height:
            return FittedText(size, tuple(lines), spacing, cut=False)
        if size <= min_size:
            break
        size = max(min_size, size - 2)
    while len(lines) > 1 and _text_height(draw, lines, font, spacing) > height:
        lines = lines[:-1]
    ellipsis = lines[-1].rstrip() + " …"
    while draw.textlength(ellipsis, font=font) > width and " " in ellipsis.strip():
        ellipsis = ellipsis[: ellipsis.rstrip(" …").rfind(" ")] + " …"
    return FittedText(size, (*lines[:-1], ellipsis), spacing, cut=True)


def _text_height(
    draw: ImageDraw.ImageDraw,
    lines: list[str],
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    spacing: int,
) -> float:
    return draw.multiline_textbbox((0, 0), "\n".join(lines), font=font, spacing=spacing)[3]


def _run(command: list[str]) -> None:
    try:
        subprocess.run(  # noqa: S603 - fixed binaries with our own arguments
            command, capture_output=True, check=True, timeout=FFMPEG_TIMEOUT_SECONDS
        )
    except subprocess.CalledProcessError as exc:
        stderr = exc.stderr.decode(errors="replace")[-500:] if exc.stderr else ""
        raise RenderError(f"{Path(command[0]).name} failed ({exc.returncode}): {stderr}") from exc
    except subprocess.TimeoutExpired as exc:
        raise RenderError(f"{Path(command[0]).name} timed out") from exc
