"""What a generation job asks for, and the shapes the model must answer in."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl


class JobParameters(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str = Field(min_length=3, max_length=200)
    duration_days: Literal[7, 14, 21]
    audience: str = Field(default="curious adults", min_length=1, max_length=200)
    level: Literal["beginner", "intermediate", "advanced"] = "beginner"
    tone: str = Field(default="friendly and practical", min_length=1, max_length=100)
    language: str = Field(default="en", pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    category_id: uuid.UUID | None = None
    reference_document_ids: list[uuid.UUID] = Field(default_factory=list, max_length=10)
    model: str | None = Field(default=None, max_length=200)


class DayPlan(BaseModel):
    day: int = Field(ge=1, le=21)
    title: str = Field(min_length=1, max_length=200)
    objectives: list[str] = Field(min_length=1, max_length=8)
    topics: list[str] = Field(min_length=1, max_length=10)


class CourseOutline(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=5000)
    learning_outcomes: list[str] = Field(min_length=1, max_length=10)
    days: list[DayPlan]

    def check_days(self, expected: int) -> None:
        numbers = [plan.day for plan in self.days]
        if numbers != list(range(1, expected + 1)):
            raise ValueError(f"days must be numbered 1..{expected} in order, got {numbers}")


class ActionItemDraft(BaseModel):
    text: str = Field(min_length=1, max_length=500)


class ResourceDraft(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    url: HttpUrl


class LessonDraft(BaseModel):
    markdown: str = Field(min_length=50, max_length=100_000)
    action_items: list[ActionItemDraft] = Field(min_length=1, max_length=10)
    resources: list[ResourceDraft] = Field(default_factory=list, max_length=10)


class ScriptDraft(BaseModel):
    script: str = Field(min_length=20, max_length=50_000)
