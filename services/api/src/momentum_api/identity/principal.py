from __future__ import annotations

import uuid
from dataclasses import dataclass

from momentum_domain.learning.service import Learner
from momentum_domain.users.models import Role


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller, as handlers see it (``request.user``)."""

    id: uuid.UUID
    email: str
    name: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def as_learner(self) -> Learner:
        return Learner(self.id, self.role)
