"""The offline provider: schema-valid, deterministic, marked as offline, no network."""

from __future__ import annotations

import json
import socket
from typing import Any

import jsonschema
import pytest

from momentum_generator.llm import (
    LESSON_SCHEMA,
    OFFLINE_MODEL,
    SCRIPT_SCHEMA,
    LlmRejected,
    LlmRequest,
    OfflineProvider,
    outline_schema,
    prompt_lines,
)
from momentum_generator.llm.offline import OFFLINE_NOTE

SYSTEM = "You write micro-courses. Answer with JSON."


def outline_request(days: int, topic: str = "Intro to SQL") -> LlmRequest:
    prompt = f"Design the outline of a course.\nTOPIC: {topic}\nDAYS: {days}\nLEVEL: Beginner"
    return LlmRequest("outline", SYSTEM, prompt, 4000, json_schema=outline_schema(days))


def lesson_request(day: int = 3) -> LlmRequest:
    prompt = "\n".join(
        [
            "Write one lesson.",
            "COURSE_TOPIC: Intro to SQL",
            f"DAY: {day}",
            "TITLE: Joining tables",
            "TOPICS: Inner joins; Outer joins; SQL keys",
            "OBJECTIVES: Write an inner join; Explain outer joins",
        ]
    )
    return LlmRequest("lesson", SYSTEM, prompt, 4000, json_schema=LESSON_SCHEMA)


def script_request(words: int) -> LlmRequest:
    prompt = f"Write the narration.\nDAY: 3\nTITLE: Joining tables\nTARGET_WORDS: {words}\n"
    return LlmRequest("script", SYSTEM, prompt, 2000, json_schema=SCRIPT_SCHEMA)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a socket fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the offline provider tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.parametrize("days", [1, 7, 14, 21, 30])
async def test_outline_has_exactly_the_requested_days(days: int, no_network: None) -> None:
    response = await OfflineProvider().complete(outline_request(days))

    outline = json.loads(response.text)
    jsonschema.validate(outline, outline_schema(days))
    assert [d["day"] for d in outline["days"]] == list(range(1, days + 1))
    titles = [d["title"] for d in outline["days"]]
    assert len(set(titles)) == days
    assert "Intro to SQL" in outline["title"]
    assert OFFLINE_NOTE in outline["description"]
    assert response.model == OFFLINE_MODEL == "offline"
    assert response.provider == "offline"


async def test_outline_rejects_a_prompt_without_its_lines() -> None:
    provider = OfflineProvider()
    with pytest.raises(LlmRejected, match="DAYS"):
        await provider.complete(LlmRequest("outline", SYSTEM, "TOPIC: SQL\n", 4000))
    with pytest.raises(LlmRejected, match="DAYS"):
        await provider.complete(LlmRequest("outline", SYSTEM, "TOPIC: SQL\nDAYS: many", 4000))
    with pytest.raises(LlmRejected, match="TOPIC"):
        await provider.complete(LlmRequest("outline", SYSTEM, "DAYS: 7\n", 4000))


async def test_lesson_shape(no_network: None) -> None:
    response = await OfflineProvider().complete(lesson_request())

    lesson = json.loads(response.text)
    jsonschema.validate(lesson, LESSON_SCHEMA)
    markdown = lesson["markdown"]
    assert markdown.startswith("# Day 3: Joining tables\n")
    assert OFFLINE_NOTE in markdown
    for topic in ("Inner joins", "Outer joins", "SQL keys"):
        assert f"### {topic}" in markdown
    assert "- Write an inner join" in markdown
    assert len(lesson["action_items"]) >= 2
    assert all(r["url"].startswith("https://") for r in lesson["resources"])


@pytest.mark.parametrize("words", [60, 150, 450, 900])
async def test_script_is_about_the_target_length(words: int, no_network: None) -> None:
    response = await OfflineProvider().complete(script_request(words))

    script = json.loads(response.text)
    jsonschema.validate(script, SCRIPT_SCHEMA)
    count = len(script["script"].split())
    assert words * 0.9 <= count <= words
    assert "generated offline" in script["script"]
    assert "Joining tables" in script["script"]


async def test_script_uses_the_lesson_sections_quoted_in_the_prompt() -> None:
    prompt = (
        "TITLE: Joins\nTARGET_WORDS: 200\nLESSON:\n# Day 1\n### Inner joins\n### Foreign keys\n"
    )
    response = await OfflineProvider().complete(LlmRequest("script", SYSTEM, prompt, 2000))
    script = json.loads(response.text)["script"]
    assert "inner joins" in script
    assert "foreign keys" in script


async def test_the_same_prompt_gives_the_same_answer_and_another_prompt_another() -> None:
    first, second = OfflineProvider(), OfflineProvider()
    for request in (outline_request(7), lesson_request(), script_request(300)):
        assert (await first.complete(request)).text == (await second.complete(request)).text
    other = await first.complete(outline_request(7, topic="Watercolour painting"))
    assert other.text != (await first.complete(outline_request(7))).text


async def test_repair_answers_as_the_original_purpose() -> None:
    provider = OfflineProvider()
    original = outline_request(7).prompt
    repair = LlmRequest(
        "repair",
        SYSTEM,
        f"REPAIR_OF: outline\n{original}\nYour previous answer was not valid: ...",
        4000,
    )
    outline = json.loads((await provider.complete(repair)).text)
    jsonschema.validate(outline, outline_schema(7))
    # Without REPAIR_OF the lines still tell which answer is wanted.
    lesson = json.loads(
        (await provider.complete(LlmRequest("repair", SYSTEM, lesson_request().prompt, 4000))).text
    )
    jsonschema.validate(lesson, LESSON_SCHEMA)


async def test_unknown_structured_purpose_is_rejected_and_plain_text_is_marked() -> None:
    provider = OfflineProvider()
    with pytest.raises(LlmRejected, match="quiz"):
        await provider.complete(LlmRequest("quiz", SYSTEM, "Make a quiz", 500, json_schema={}))
    text = (await provider.complete(LlmRequest("summary", SYSTEM, "Summarise", 500))).text
    assert text.startswith(OFFLINE_NOTE)


async def test_tokens_are_estimated_and_calls_counted() -> None:
    provider = OfflineProvider()
    request = lesson_request()
    response = await provider.complete(request)
    await provider.complete(outline_request(7))
    await provider.complete(lesson_request(day=4))

    assert response.input_tokens == len(request.system + request.prompt) // 4
    assert response.output_tokens == len(response.text) // 4 > 0
    assert provider.calls == {"lesson": 2, "outline": 1}
    assert await provider.generate_image("a thumbnail") is None


async def test_latency_is_added_per_purpose() -> None:
    provider = OfflineProvider(latency={"outline": 0.05})
    slow = await provider.complete(outline_request(7))
    assert slow.latency_ms >= 50  # asyncio.sleep waits at least that long
    assert provider.latency == {"outline": 0.05}


def test_prompt_lines_reads_the_first_occurrence_of_each_key() -> None:
    lines = prompt_lines("Intro text: ignored\nDAY: 3\n  TITLE:  Joins  \nTITLE: later\nnot: a key")
    assert lines == {"DAY": "3", "TITLE": "Joins"}
