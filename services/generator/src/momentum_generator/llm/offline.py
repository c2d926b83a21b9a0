"""The offline provider: deterministic, schema-valid course content composed from templates,
without any network access. It is the embedded default, so a fresh clone can generate a whole
course; everything it writes says that it was generated offline.

It reads the ``KEY: value`` prompt lines documented in :mod:`.base`. The same request always
gives the same answer (the phrasing varies with a seed taken from the prompt).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import random
import re
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus

from momentum_generator.llm.base import (
    LlmProvider,
    LlmRejected,
    LlmRequest,
    LlmResponse,
    estimate_tokens,
    prompt_lines,
)
from momentum_generator.llm.offline_templates import ARC, OPENERS, OUTCOMES, SENTENCES

OFFLINE_MODEL = "offline"
_HEADING = re.compile(r"^###[ \t]+(.+)$", re.MULTILINE)
OFFLINE_NOTE = (
    "(Generated offline: composed from templates without a language model; "
    "review and rewrite before publishing.)"
)
MAX_DAYS = 366


class OfflineProvider(LlmProvider):
    """``latency`` adds a fixed delay per purpose (seconds, for benchmarks); ``calls`` counts
    the calls per purpose (for tests)."""

    name = "offline"
    model = OFFLINE_MODEL

    def __init__(self, *, latency: Mapping[str, float] | None = None) -> None:
        self.latency: dict[str, float] = dict(latency or {})
        self.calls: Counter[str] = Counter()

    async def complete(self, request: LlmRequest) -> LlmResponse:
        self.calls[request.purpose] += 1
        started = time.perf_counter()
        delay = self.latency.get(request.purpose, 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        text = compose(request)
        return LlmResponse(
            text=text,
            input_tokens=estimate_tokens(request.system + request.prompt),
            output_tokens=estimate_tokens(text),
            model=OFFLINE_MODEL,
            provider=self.name,
            latency_ms=(time.perf_counter() - started) * 1000,
        )


def compose(request: LlmRequest) -> str:
    """The answer to a request, as the text a model would return."""
    lines = prompt_lines(request.prompt)
    purpose = request.purpose
    if purpose == "repair":
        purpose = lines.get("REPAIR_OF", "").strip().lower() or _infer_purpose(lines)
    rng = random.Random(hashlib.sha256(request.prompt.encode()).digest())
    if purpose == "outline":
        return _dump(compose_outline(lines, rng))
    if purpose == "lesson":
        return _dump(compose_lesson(lines, rng))
    if purpose == "script":
        return _dump(compose_script(lines, rng, request.prompt))
    if request.json_schema is not None:
        raise LlmRejected(
            f"The offline provider cannot compose structured output for purpose {purpose!r}."
        )
    return f"{OFFLINE_NOTE} " + " ".join(
        rng.choice(SENTENCES).format(x="this request") for _ in range(3)
    )


def compose_outline(lines: Mapping[str, str], rng: random.Random) -> dict[str, Any]:
    topic = _required(lines, "TOPIC", "outline")
    days = _positive_int(lines, "DAYS", "outline", maximum=MAX_DAYS)
    audience = lines.get("AUDIENCE") or "busy learners"
    level = (lines.get("LEVEL") or "beginner").lower()
    plan = []
    for index, (title, topics, objectives) in enumerate(_arc(days)):
        part = f" (part {index // len(ARC) + 1})" if days > len(ARC) else ""
        plan.append(
            {
                "day": index + 1,
                "title": _clip(title.format(t=topic) + part),
                "objectives": [o.format(t=topic) for o in objectives],
                "topics": [t.format(t=topic) for t in topics],
            }
        )
    outcomes = rng.sample(OUTCOMES, 4)
    return {
        "title": _clip(f"{_capitalise(topic)} in {days} days"),
        "description": (
            f"A {days}-day, {level}-level micro-learning course on {topic} for {audience}: "
            f"one short lesson and a few practical actions each day. {OFFLINE_NOTE}"
        ),
        "learning_outcomes": [o.format(t=topic) for o in outcomes],
        "days": plan,
    }


def compose_lesson(lines: Mapping[str, str], rng: random.Random) -> dict[str, Any]:
    day = _positive_int(lines, "DAY", "lesson", maximum=MAX_DAYS)
    title = _required(lines, "TITLE", "lesson")
    topics = _list(lines.get("TOPICS")) or [title]
    objectives = _list(lines.get("OBJECTIVES"))
    course = lines.get("COURSE_TOPIC")
    parts = [f"# Day {day}: {title}", "", f"*{OFFLINE_NOTE}*", "", "## Why this matters", ""]
    context = f" in *{course}*" if course else ""
    parts.append(
        f"Today's lesson{context} covers {_join(topics)}. Work through it in about ten "
        "minutes, then spend a few more on the actions at the end."
    )
    if objectives:
        parts += ["", "By the end of today you will be able to:", ""]
        parts += [f"- {o}" for o in objectives]
    parts += ["", "## Key ideas"]
    for topic in topics:
        sentences = rng.sample(SENTENCES, 2)
        parts += [
            "",
            f"### {topic}",
            "",
            _capitalise(rng.choice(OPENERS).format(x=_decapitalise(topic))),
            " ".join(_capitalise(s.format(x=_decapitalise(topic))) for s in sentences),
        ]
    parts += ["", "## Try it today", ""]
    actions = [
        f"Write three sentences explaining {topics[0]} in your own words.",
        f"Find one example of {topics[-1]} in your work or daily life.",
        f"Spend ten minutes on today's theme: {title}.",
    ]
    parts += [f"{n}. {a}" for n, a in enumerate(actions, start=1)]
    parts += ["", "## Recap", "", f"You looked at {_join(topics)}. Tomorrow builds on it."]
    subject = course or title
    resources = [
        {
            "title": f"Wikipedia: {subject}",
            "url": f"https://en.wikipedia.org/w/index.php?search={quote_plus(subject)}",
        },
        {
            "title": f"Web search: {title}",
            "url": f"https://duckduckgo.com/?q={quote_plus(f'{subject} {topics[0]}')}",
        },
    ]
    return {
        "markdown": "\n".join(parts) + "\n",
        "action_items": [{"text": a} for a in actions],
        "resources": resources,
    }


def compose_script(
    lines: Mapping[str, str], rng: random.Random, prompt: str = ""
) -> dict[str, Any]:
    """Narration of at most TARGET_WORDS words and within one sentence of it."""
    target = _positive_int(lines, "TARGET_WORDS", "script", maximum=20_000)
    title = lines.get("TITLE") or "today's lesson"
    # Without TOPICS, the lesson's own sections ("### ..." headings quoted in the prompt).
    topics = _list(lines.get("TOPICS")) or _headings(prompt) or [title]
    opening = [
        f"Welcome to {title}.",
        "This narration was generated offline, without a language model.",
    ]
    closing = "That is all for today. See you in the next lesson."
    words = sum(len(s.split()) for s in opening) + len(closing.split())
    body: list[str] = []
    sentences = [_capitalise(s.format(x=_decapitalise(t))) for t in topics for s in SENTENCES]
    rng.shuffle(sentences)
    for sentence in itertools.cycle(sentences):
        count = len(sentence.split())
        if words + count > target:
            break
        body.append(sentence)
        words += count
    return {"script": " ".join([*opening, *body, closing])}


def _arc(days: int) -> list[tuple[str, tuple[str, str, str], tuple[str, str]]]:
    """``days`` steps spread evenly over the arc, so every course starts with the basics and
    ends with next steps."""
    size = len(ARC)
    if days == 1:
        return [ARC[0]]
    if days <= size:
        return [ARC[round(i * (size - 1) / (days - 1))] for i in range(days)]
    return [ARC[i % size] for i in range(days)]


def _infer_purpose(lines: Mapping[str, str]) -> str:
    if "DAYS" in lines:
        return "outline"
    if "TARGET_WORDS" in lines:
        return "script"
    if "DAY" in lines:
        return "lesson"
    return "repair"


def _required(lines: Mapping[str, str], key: str, purpose: str) -> str:
    value = lines.get(key, "").strip()
    if not value:
        raise LlmRejected(
            f"An offline {purpose} prompt needs a '{key}: ...' line (see momentum_generator."
            "llm.base)."
        )
    return value


def _positive_int(lines: Mapping[str, str], key: str, purpose: str, *, maximum: int) -> int:
    raw = _required(lines, key, purpose)
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= maximum:
        raise LlmRejected(
            f"The '{key}:' line of an offline {purpose} prompt must be an integer from 1 to "
            f"{maximum}, not {raw!r}."
        )
    return value


def _list(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(";") if item.strip()]


def _headings(prompt: str) -> list[str]:
    return [m.group(1).strip() for m in _HEADING.finditer(prompt)][:6]


def _join(items: list[str]) -> str:
    items = [_decapitalise(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _decapitalise(text: str) -> str:
    """'Framing the problem' -> 'framing the problem', but 'SQL joins' stays as it is."""
    first = text.split(" ", 1)[0]
    if len(first) > 1 and first.isupper():  # an acronym
        return text
    return text[:1].lower() + text[1:]


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _dump(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


__all__ = ["OFFLINE_MODEL", "OFFLINE_NOTE", "OfflineProvider", "compose"]
