"""What learning announces (momentum_domain.kit.unit_of_work.dispatch): other domains react without
learning knowing them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class LessonCompleted:
    """A learner completed a lesson for the first time (a repeat keeps the first completion and
    announces nothing)."""

    user_id: uuid.UUID
    lesson_id: uuid.UUID
    completed_at: datetime
