"""What generation announces after a commit (momentum_domain.kit.unit_of_work.publish)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StepsReady:
    """These steps are committed QUEUED: they are to be sent to the generator."""

    step_ids: tuple[uuid.UUID, ...]
