"""Course thumbnails without an image model: a rendered title card, a placeholder, and the
normalisation of a generated image to the same 1280x720 PNG."""

from __future__ import annotations

import hashlib
import io
from functools import lru_cache, partial

from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from momentum_domain.kit.text_wrap import Measure, wrap_text

WIDTH, HEIGHT = 1280, 720
MARGIN = 96
TITLE_SIZES = (88, 76, 66, 58, 50)
TITLE_MAX_LINES = 4
SUBTITLE_SIZE = 36
SUBTITLE_MAX_LINES = 2
BRAND = "Momentum"

# (top colour, bottom colour) pairs, dark enough for white text.
_PALETTES = (
    ((30, 41, 89), (76, 29, 149)),
    ((12, 74, 110), (15, 118, 110)),
    ((127, 29, 29), (154, 52, 18)),
    ((20, 83, 45), (21, 94, 117)),
    ((55, 48, 163), (157, 23, 77)),
    ((31, 41, 55), (71, 85, 105)),
)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def render_title_card(title: str, subtitle: str) -> bytes:
    """A 1280x720 PNG: the title wrapped in large type over a gradient (its colours chosen by
    the title, so a course always gets the same card), the subtitle below it."""
    title = " ".join(title.split()) or "Untitled course"
    subtitle = " ".join(subtitle.split())
    digest = hashlib.sha256(title.encode()).digest()
    top, bottom = _PALETTES[digest[0] % len(_PALETTES)]
    image = _gradient(top, bottom)
    draw = ImageDraw.Draw(image)
    width = WIDTH - 2 * MARGIN

    title_font, title_lines = _fit(draw, title, width)
    subtitle_font = _font(SUBTITLE_SIZE)
    subtitle_lines = (
        wrap_text(subtitle, _measure(draw, subtitle_font), width, SUBTITLE_MAX_LINES)
        if subtitle
        else []
    )
    title_height = _line_height(title_font)
    subtitle_height = _line_height(subtitle_font)
    gap = subtitle_height if subtitle_lines else 0
    block = len(title_lines) * title_height + gap + len(subtitle_lines) * subtitle_height
    y = max((HEIGHT - block) // 2 - 24, MARGIN // 2)

    draw.rectangle((MARGIN, y - 28, MARGIN + 120, y - 20), fill=(250, 204, 21))
    for line in title_lines:
        draw.text((MARGIN, y), line, font=title_font, fill=(255, 255, 255))
        y += title_height
    y += gap
    for line in subtitle_lines:
        draw.text((MARGIN, y), line, font=subtitle_font, fill=(226, 232, 240))
        y += subtitle_height
    draw.text((MARGIN, HEIGHT - MARGIN // 2 - 28), BRAND, font=_font(28), fill=(203, 213, 225))
    return _png(image)


@lru_cache(maxsize=1)
def placeholder_png() -> bytes:
    """The thumbnail of last resort: a plain branded card."""
    image = _gradient((31, 41, 55), (51, 65, 85))
    draw = ImageDraw.Draw(image)
    font = _font(72)
    left, top, right, bottom = draw.textbbox((0, 0), BRAND, font=font)
    draw.text(
        ((WIDTH - (right - left)) // 2, (HEIGHT - (bottom - top)) // 2 - top),
        BRAND,
        font=font,
        fill=(226, 232, 240),
    )
    return _png(image)


def to_thumbnail_png(data: bytes) -> bytes:
    """A generated image, cropped to fill 1280x720 and saved as PNG. Raises ValueError when the
    bytes are not an image Pillow can read."""
    try:
        with Image.open(io.BytesIO(data)) as source:
            source.load()
            image = source.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ValueError(f"not a readable image: {exc}") from exc
    scale = max(WIDTH / image.width, HEIGHT / image.height)
    resized = image.resize(
        (max(round(image.width * scale), WIDTH), max(round(image.height * scale), HEIGHT)),
        Image.Resampling.LANCZOS,
    )
    left = (resized.width - WIDTH) // 2
    top = (resized.height - HEIGHT) // 2
    return _png(resized.crop((left, top, left + WIDTH, top + HEIGHT)))


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int) -> tuple[Font, list[str]]:
    """The largest title size whose wrapping fits the line limit; the smallest size with an
    ellipsis when none does."""
    for size in TITLE_SIZES:
        font = _font(size)
        lines = wrap_text(text, _measure(draw, font), width, None)
        if len(lines) <= TITLE_MAX_LINES:
            return font, lines
    font = _font(TITLE_SIZES[-1])
    return font, wrap_text(text, _measure(draw, font), width, TITLE_MAX_LINES)


def _measure(draw: ImageDraw.ImageDraw, font: Font) -> Measure:
    return partial(draw.textlength, font=font)


@lru_cache(maxsize=16)
def _font(size: int) -> Font:
    # Pillow's bundled font, scalable when Pillow has FreeType (a bitmap font otherwise).
    return ImageFont.load_default(size=size)


def _line_height(font: Font) -> int:
    _left, top, _right, bottom = font.getbbox("Ágyp")
    return int((bottom - min(top, 0)) * 1.2)


def _gradient(top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    column = Image.new("RGB", (1, HEIGHT))
    for y in range(HEIGHT):
        t = y / (HEIGHT - 1)
        column.putpixel(
            (0, y), tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        )
    return column.resize((WIDTH, HEIGHT))


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


__all__ = ["placeholder_png", "render_title_card", "to_thumbnail_png"]
