"""The prompts of the pipeline. Each states its facts on labelled lines (TOPIC:, DAYS:, DAY:,
TITLE:, TOPICS:, TARGET_WORDS:) so every provider, the offline one included, reads the same
request."""

from __future__ import annotations

import json
from typing import Any

from momentum_domain.generation.schemas import (
    CourseOutline,
    DayPlan,
    JobParameters,
    LessonDraft,
    ScriptDraft,
)

SYSTEM = (
    "You are an expert instructional designer writing bite-sized daily lessons for Momentum, a "
    "micro-learning service. Lessons take 10-15 minutes, are concrete and practical, and end "
    "with actions the learner can take today. Answer with a single JSON object and nothing else."
)


def schema_of(model: type[Any]) -> dict[str, Any]:
    schema: dict[str, Any] = model.model_json_schema()
    return schema


def outline_prompt(params: JobParameters) -> str:
    return "\n".join(
        [
            "Design the outline of a daily micro-course.",
            f"TOPIC: {params.topic}",
            f"DAYS: {params.duration_days}",
            f"AUDIENCE: {params.audience}",
            f"LEVEL: {params.level}",
            f"TONE: {params.tone}",
            f"LANGUAGE: {params.language}",
            "Return JSON with: title, description (2-3 sentences), learning_outcomes (3-6), and "
            f"days: exactly {params.duration_days} objects numbered 1..{params.duration_days}, "
            "each with day, title, objectives (2-4) and topics (2-5).",
            "JSON schema: " + json.dumps(schema_of(CourseOutline)),
        ]
    )


def lesson_prompt(
    params: JobParameters, outline: CourseOutline, plan: DayPlan, grounding: list[str]
) -> str:
    lines = [
        f"Write day {plan.day} of the course '{outline.title}'.",
        f"COURSE_TOPIC: {params.topic}",
        f"DAY: {plan.day}",
        f"TITLE: {plan.title}",
        f"TOPICS: {'; '.join(plan.topics)}",
        f"OBJECTIVES: {'; '.join(plan.objectives)}",
        f"AUDIENCE: {params.audience}",
        f"LEVEL: {params.level}",
        f"TONE: {params.tone}",
        f"LANGUAGE: {params.language}",
        "Return JSON with: markdown (the lesson, 400-800 words, with headings and examples), "
        "action_items (2-4 objects with text) and resources (0-4 objects with title and an "
        "https url).",
    ]
    if grounding:
        lines.append("Ground the lesson in these excerpts from the reference documents:")
        lines += [f"<excerpt>{text}</excerpt>" for text in grounding]
    lines.append("JSON schema: " + json.dumps(schema_of(LessonDraft)))
    return "\n".join(lines)


def script_prompt(
    params: JobParameters, plan: DayPlan, lesson: LessonDraft, target_words: int
) -> str:
    return "\n".join(
        [
            "Write the narration script of a short video presenting this lesson, spoken by a "
            "friendly presenter. Plain sentences only: no headings, lists or stage directions.",
            f"COURSE_TOPIC: {params.topic}",
            f"DAY: {plan.day}",
            f"TITLE: {plan.title}",
            f"TARGET_WORDS: {target_words}",
            "LESSON:",
            lesson.markdown,
            "Return JSON with: script.",
            "JSON schema: " + json.dumps(schema_of(ScriptDraft)),
        ]
    )


def repair_prompt(original_prompt: str, answer: str, error: str) -> str:
    return "\n".join(
        [
            original_prompt,
            "Your previous answer was not valid:",
            error[:2000],
            "Previous answer:",
            answer[:20_000],
            "Answer again with one corrected JSON object only.",
        ]
    )
