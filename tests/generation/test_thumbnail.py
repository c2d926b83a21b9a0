"""Title cards and placeholders are real 1280x720 PNGs."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageChops

from momentum_generator.thumbnail import (
    placeholder_png,
    render_title_card,
    to_thumbnail_png,
)


def open_png(data: bytes) -> Image.Image:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image


def test_title_card_is_a_1280x720_png_with_text() -> None:
    image = open_png(render_title_card("Intro to SQL", "A 7-day course"))
    assert image.size == (1280, 720)
    # Text was drawn: white pixels exist on the dark gradient.
    assert (255, 255, 255) in {c for _, c in image.convert("RGB").getcolors(1 << 20) or []}


def test_title_card_depends_on_the_title_and_is_deterministic() -> None:
    first = render_title_card("Intro to SQL", "A 7-day course")
    assert render_title_card("Intro to SQL", "A 7-day course") == first
    other = open_png(render_title_card("Watercolour painting", "A 7-day course"))
    assert ImageChops.difference(open_png(first).convert("RGB"), other.convert("RGB")).getbbox()


@pytest.mark.parametrize(
    "title",
    [
        "",
        "x",
        "A very long course title " * 20,
        "Supercalifragilisticexpialidocious" * 5,
        "Ünïcödé — naïve café ✓",
    ],
)
def test_title_card_handles_any_title(title: str) -> None:
    image = open_png(render_title_card(title, "subtitle " * 30))
    assert image.size == (1280, 720)


def test_placeholder_is_a_1280x720_png() -> None:
    assert open_png(placeholder_png()).size == (1280, 720)


def test_generated_images_are_cropped_to_the_thumbnail_size() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (1280, 768), (10, 20, 30)).save(buffer, format="JPEG")
    image = open_png(to_thumbnail_png(buffer.getvalue()))
    assert image.size == (1280, 720)
    with pytest.raises(ValueError, match="not a readable image"):
        to_thumbnail_png(b"definitely not an image")
