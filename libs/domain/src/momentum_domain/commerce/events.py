"""What commerce announces (momentum_domain.kit.unit_of_work.dispatch): other domains react
without commerce knowing them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CoursePurchased:
    """A course payment succeeded (announced once, when the payment first becomes SUCCEEDED):
    learning enrolls the buyer in the same transaction."""

    user_id: uuid.UUID
    course_id: uuid.UUID
