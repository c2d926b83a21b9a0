"""Who may open which course. One function, so every door (enrollment, lessons) asks the same
question; payments extend it with purchases and subscriptions."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.catalog.models import Course
from momentum_domain.users.models import Role


async def may_open_course(
    session: AsyncSession, *, user_id: uuid.UUID, role: Role, course: Course
) -> bool:
    if role is Role.ADMIN:
        return True
    if not course.is_premium and course.price_cents == 0:
        return True
    return role is Role.PREMIUM
