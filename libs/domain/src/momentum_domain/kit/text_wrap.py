"""Greedy word wrap by measured width, for text drawn on images: the generator's thumbnails and
the video worker's slides. The caller measures, so this module needs no imaging library; with
Pillow the measure is ``partial(draw.textlength, font=font)``."""

from __future__ import annotations

from collections.abc import Callable

Measure = Callable[[str], float]


def wrap_text(text: str, measure: Measure, width: float, max_lines: int | None) -> list[str]:
    """Greedy word wrap; a word longer than a line is cut. With ``max_lines`` the last line
    ends in an ellipsis when text is left over."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if measure(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        while measure(word) > width:
            cut = _longest_prefix(word, measure, width)
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    if current:
        lines.append(current)
    if max_lines is not None and len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and measure(last + "…") > width:
            last = last[:-1].rstrip()
        lines = [*lines[: max_lines - 1], last + "…"]
    return lines


def _longest_prefix(word: str, measure: Measure, width: float) -> int:
    """The length of the longest prefix of ``word`` that fits (at least one character)."""
    low, high = 1, len(word)
    while low < high:
        middle = (low + high + 1) // 2
        if measure(word[:middle]) <= width:
            low = middle
        else:
            high = middle - 1
    return low
