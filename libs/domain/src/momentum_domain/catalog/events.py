"""What the catalog announces after a commit (momentum_domain.kit.unit_of_work.publish)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CatalogChanged:
    """What the public catalog shows has changed: a course, lesson, category or rating."""
