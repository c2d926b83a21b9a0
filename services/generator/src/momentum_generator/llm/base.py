"""The LLM interface of course generation: one request and response shape, one error hierarchy,
and the prompt conventions every provider (the offline one in particular) relies on.

Prompt-line convention
======================

The generation service builds every prompt as free text for a real model, and also puts a few
machine-readable lines in it, each on a line of its own, ``KEY: value`` with the key in capitals
at the start of the line. Real models read them as part of the instructions; the offline
provider parses them to compose its answer. Unknown keys are ignored.

``purpose="outline"``
    ``DAYS: <n>`` (required, the number of days), ``TOPIC: <text>`` (required, the course topic);
    optional ``AUDIENCE: <text>``, ``LEVEL: <text>``.
``purpose="lesson"``
    ``DAY: <n>`` and ``TITLE: <text>`` (required: the day and its title from the outline),
    ``TOPICS: a; b; c`` (the day's topics, separated by semicolons); optional
    ``COURSE_TOPIC: <text>`` (the course topic) and ``OBJECTIVES: a; b``.
``purpose="script"``
    ``TARGET_WORDS: <n>`` (required, the narration length in words); optional ``TITLE: <text>``
    and ``TOPICS: a; b; c``.
``purpose="repair"``
    ``REPAIR_OF: <purpose>`` (the purpose of the answer being repaired) followed by the original
    prompt's lines. The offline provider answers it as it would that purpose.

Prompts may carry more than these lines (a lesson's text, reference excerpts, the previous
answer in a repair prompt); only the first occurrence of a key counts, so put the lines above
before any quoted material.

The answers follow :func:`outline_schema`, :data:`LESSON_SCHEMA` and :data:`SCRIPT_SCHEMA`
(titles at most 200 characters).
A missing required line makes the offline provider raise :class:`LlmRejected` naming the line.
"""

from __future__ import annotations

import abc
import json
import re
from dataclasses import dataclass
from typing import Any

from momentum_domain.errors import MomentumError

# ---------------------------------------------------------------------------------------------
# Requests and responses


@dataclass(frozen=True, slots=True)
class LlmRequest:
    """One completion. ``purpose`` names the pipeline step ("outline", "lesson", "script",
    "repair") and becomes the span name ``llm.<purpose>``."""

    purpose: str
    system: str
    prompt: str
    max_tokens: int
    temperature: float = 0.4
    json_schema: dict[str, Any] | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class LlmResponse:
    text: str
    input_tokens: int
    output_tokens: int
    model: str
    provider: str
    latency_ms: float
    # The model stopped at max_tokens: the text is cut short (and JSON is likely invalid).
    truncated: bool = False
    # Attempts the resilient layer needed (1 = no retry).
    attempts: int = 1


# ---------------------------------------------------------------------------------------------
# Errors


class LlmError(MomentumError):
    """A provider failed. ``retryable`` says whether trying again later may succeed."""

    status_code = 502
    title = "Language model provider error"
    retryable = False


class LlmThrottled(LlmError):
    """429 / ThrottlingException, or the shared token budget stayed exhausted too long."""

    status_code = 503
    title = "Language model provider throttled"
    retryable = True

    def __init__(self, detail: str, *, retry_after: float | None = None) -> None:
        super().__init__(detail, extra={"retry_after": retry_after})
        self.retry_after = retry_after


class LlmUnavailable(LlmError):
    """5xx, timeouts, connection errors, malformed answers: transient."""

    status_code = 503
    title = "Language model provider unavailable"
    retryable = True


class LlmRejected(LlmError):
    """4xx other than 429: the request itself is wrong (validation, access, unknown model).
    Trying again will not help."""

    title = "Language model request rejected"
    retryable = False


class CircuitOpenError(LlmError):
    """The provider's circuit breaker is open: the call was not attempted."""

    status_code = 503
    title = "Language model provider circuit open"
    retryable = True

    def __init__(self, provider: str) -> None:
        super().__init__(
            f"The {provider} provider failed repeatedly; calls are paused for a while.",
            extra={"provider": provider},
        )
        self.provider = provider


# ---------------------------------------------------------------------------------------------
# The interface


class LlmProvider(abc.ABC):
    """A language model back end. Implementations raise only :class:`LlmError` subclasses."""

    name: str
    model: str  # the configured default model id

    @abc.abstractmethod
    async def complete(self, request: LlmRequest) -> LlmResponse: ...

    async def generate_image(self, prompt: str) -> bytes | None:
        """PNG bytes of an image for the prompt, or None when the provider has no images."""
        return None

    async def aclose(self) -> None:
        """Release connections. Safe to call more than once."""
        return None


# ---------------------------------------------------------------------------------------------
# Prompt lines and answer schemas

_LINE = re.compile(r"^[ \t]*([A-Z][A-Z_]*)[ \t]*:[ \t]*(.*?)[ \t]*$", re.MULTILINE)


def prompt_lines(prompt: str) -> dict[str, str]:
    """The ``KEY: value`` lines of a prompt (the first occurrence of each key wins)."""
    lines: dict[str, str] = {}
    for match in _LINE.finditer(prompt):
        lines.setdefault(match.group(1), match.group(2))
    return lines


def outline_schema(days: int | None = None) -> dict[str, Any]:
    """JSON schema of an outline; with ``days`` it also pins the number of days."""
    day_list: dict[str, Any] = {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["day", "title", "objectives", "topics"],
            "properties": {
                "day": {"type": "integer", "minimum": 1},
                "title": {"type": "string", "minLength": 1},
                "objectives": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "minLength": 1},
                },
                "topics": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "minLength": 1},
                },
            },
        },
    }
    if days is not None:
        day_list["minItems"] = day_list["maxItems"] = days
    else:
        day_list["minItems"] = 1
    return {
        "type": "object",
        "required": ["title", "description", "learning_outcomes", "days"],
        "properties": {
            "title": {"type": "string", "minLength": 1},
            "description": {"type": "string", "minLength": 1},
            "learning_outcomes": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "minLength": 1},
            },
            "days": day_list,
        },
    }


LESSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["markdown", "action_items", "resources"],
    "properties": {
        "markdown": {"type": "string", "minLength": 1},
        "action_items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["text"],
                "properties": {"text": {"type": "string", "minLength": 1}},
            },
        },
        "resources": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["title", "url"],
                "properties": {
                    "title": {"type": "string", "minLength": 1},
                    "url": {"type": "string", "pattern": "^https://"},
                },
            },
        },
    },
}

SCRIPT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["script"],
    "properties": {"script": {"type": "string", "minLength": 1}},
}


def json_instruction(schema: dict[str, Any], prompt: str = "") -> str:
    """The system-prompt paragraph asking a model for JSON that follows ``schema``; the schema
    itself is left out when the prompt already contains it (as ``json.dumps`` writes it)."""
    instruction = "Answer with one JSON object only: no prose before or after it, no code fences."
    if any(json.dumps(schema, separators=s) in prompt for s in ((", ", ": "), (",", ":"))):
        return instruction + " It must follow the JSON schema given in the request."
    return f"{instruction} It must follow this JSON schema:\n" + json.dumps(
        schema, separators=(",", ":")
    )


_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*\n(.*?)\n?\s*```\s*$", re.DOTALL)


def strip_code_fences(text: str) -> str:
    """Models sometimes wrap JSON in a Markdown code fence despite being asked not to."""
    match = _FENCE.match(text)
    return match.group(1).strip() if match else text.strip()


def estimate_tokens(text: str) -> int:
    """A rough token count (four characters a token), used where no real count exists."""
    return len(text) // 4


__all__ = [
    "LESSON_SCHEMA",
    "SCRIPT_SCHEMA",
    "CircuitOpenError",
    "LlmError",
    "LlmProvider",
    "LlmRejected",
    "LlmRequest",
    "LlmResponse",
    "LlmThrottled",
    "LlmUnavailable",
    "estimate_tokens",
    "json_instruction",
    "outline_schema",
    "prompt_lines",
    "strip_code_fences",
]
