"""The word wrap thumbnails and slides share, measured here in characters."""

from __future__ import annotations

from momentum_domain.kit.text_wrap import wrap_text


def test_words_fill_each_line_greedily() -> None:
    assert wrap_text("one two three four", len, 9, None) == ["one two", "three", "four"]


def test_a_word_longer_than_a_line_is_cut() -> None:
    assert wrap_text("a abcdefghij", len, 4, None) == ["a", "abcd", "efgh", "ij"]


def test_text_beyond_the_line_limit_ends_in_an_ellipsis_that_fits() -> None:
    lines = wrap_text("alpha beta gamma delta", len, 10, 2)
    assert lines == ["alpha beta", "gamma…"]
    assert wrap_text("alpha beta gammadelta x", len, 10, 2) == ["alpha beta", "gammadelt…"]


def test_nothing_to_wrap() -> None:
    assert wrap_text("  ", len, 10, 2) == []
