"""Who may fetch a stored file without a link signed for it, as the database says now: a
published course's thumbnail is public, and a reference PDF is for administrators only."""

from __future__ import annotations

import uuid

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.catalog.models import Course, CourseStatus
from momentum_domain.users.models import Role, User


async def is_published_thumbnail(session: AsyncSession, urls: list[str]) -> bool:
    """Whether a published course shows any of ``urls`` (one file's stored forms) as its
    thumbnail."""
    named = Course.thumbnail_url.in_(urls)
    published = Course.status == CourseStatus.PUBLISHED
    return bool(await session.scalar(select(exists().where(named, published))))


async def is_admin_now(session: AsyncSession, viewer: str) -> bool:
    """Whether the link's viewer is an administrator now (not merely when it was signed)."""
    try:
        user_id = uuid.UUID(viewer)
    except ValueError:  # anonymous
        return False
    role = await session.scalar(
        select(User.role).where(User.id == user_id, User.erased_at.is_(None))
    )
    return role is Role.ADMIN
