from __future__ import annotations

import uuid
from dataclasses import dataclass

from momentum_domain.learning.service import Learner
from momentum_domain.users.models import Role, User


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller, as handlers see it (``request.user``)."""

    id: uuid.UUID
    email: str
    name: str
    role: Role

    @classmethod
    def of(cls, user: User) -> Principal:
        return cls(id=user.id, email=user.email, name=user.name, role=user.role)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def as_learner(self) -> Learner:
        return Learner(self.id, self.role)
