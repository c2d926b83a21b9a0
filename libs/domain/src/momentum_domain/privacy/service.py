"""A learner's data, taken away (export) or erased. Erasure anonymises the account in place:
learning history, reviews, notes and sessions go; payments stay for the accounts, detached from
the person; nothing that identifies them remains."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.audit.models import AuditLog
from momentum_domain.audit.service import RequestOrigin, audit
from momentum_domain.catalog.events import CatalogChanged
from momentum_domain.catalog.models import Course
from momentum_domain.commerce.models import Payment, Subscription
from momentum_domain.community.models import Badge, Review, UserBadge
from momentum_domain.community.service import reviews
from momentum_domain.errors import NotFound
from momentum_domain.kit.unit_of_work import commit, publish
from momentum_domain.learning.models import Enrollment, Progress
from momentum_domain.notifications.models import OutboxMessage
from momentum_domain.users.events import UserChanged
from momentum_domain.users.models import RefreshToken, User
from momentum_domain.users.service import users


def _row(obj: Any, *names: str) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in names}


class PrivacyService:
    async def export(
        self, session: AsyncSession, user_id: uuid.UUID, *, origin: RequestOrigin
    ) -> dict[str, Any]:
        """Everything held about the user, as plain data; the export is audited."""
        user = await session.get(User, user_id)
        if user is None or user.erased_at is not None:
            raise NotFound("No such account.")
        data = await self._gather(session, user)
        await audit.record(
            session, actor_id=user_id, action="privacy.export", resource_type="user",
            resource_id=user_id, origin=origin,
        )  # fmt: skip
        await commit(session)
        return data

    async def _gather(self, session: AsyncSession, user: User) -> dict[str, Any]:
        user_id = user.id
        enrollments = await session.execute(
            select(Enrollment, Course.slug, Course.title)
            .join(Course, Course.id == Enrollment.course_id)
            .where(Enrollment.user_id == user_id)
        )
        progress = await session.scalars(select(Progress).where(Progress.user_id == user_id))
        user_reviews = await session.scalars(select(Review).where(Review.user_id == user_id))
        user_badges = await session.execute(
            select(Badge.code, Badge.name, UserBadge.awarded_at)
            .join(Badge, Badge.id == UserBadge.badge_id)
            .where(UserBadge.user_id == user_id)
        )
        payments = await session.scalars(select(Payment).where(Payment.user_id == user_id))
        subscriptions = await session.scalars(
            select(Subscription).where(Subscription.user_id == user_id)
        )
        sessions = await session.scalars(
            select(RefreshToken).where(RefreshToken.user_id == user_id)
        )
        activity = await session.scalars(
            select(AuditLog).where(AuditLog.actor_id == user_id).order_by(AuditLog.created_at)
        )
        return {
            "exported_at": datetime.now(UTC),
            "profile": _row(
                user,
                "id",
                "email",
                "name",
                "role",
                "identity_provider",
                "email_verified",
                "preferences",
                "demographics",
                "created_at",
                "last_login_at",
            ),
            "enrollments": [
                {
                    **_row(
                        e, "course_id", "status", "completion_percent", "created_at", "completed_at"
                    ),
                    "course_slug": slug,
                    "course_title": title,
                }
                for e, slug, title in enrollments.all()
            ],
            "progress": [
                _row(
                    p,
                    "lesson_id",
                    "course_id",
                    "completed",
                    "completed_at",
                    "time_spent_seconds",
                    "notes",
                    "updated_at",
                )
                for p in progress
            ],
            "reviews": [
                _row(r, "course_id", "rating", "comment", "is_hidden", "created_at", "updated_at")
                for r in user_reviews
            ],
            "badges": [
                {"code": code, "name": name, "awarded_at": awarded}
                for code, name, awarded in user_badges.all()
            ],
            "payments": [
                _row(
                    p,
                    "id",
                    "kind",
                    "course_id",
                    "amount_cents",
                    "currency",
                    "status",
                    "refunded_amount_cents",
                    "created_at",
                )
                for p in payments
            ],
            "subscriptions": [
                _row(
                    s,
                    "status",
                    "interval",
                    "current_period_end",
                    "cancel_at_period_end",
                    "created_at",
                )
                for s in subscriptions
            ],
            "sessions": [
                {
                    **_row(t, "created_at", "expires_at", "revoked_at", "user_agent"),
                    "ip": str(t.ip) if t.ip else None,
                }
                for t in sessions
            ],
            "activity": [
                {
                    **_row(a, "action", "resource_type", "resource_id", "created_at"),
                    "ip": str(a.ip) if a.ip else None,
                }
                for a in activity
            ],
        }

    async def erase(self, session: AsyncSession, user_id: uuid.UUID) -> None:
        """Erase an account (its owner's use case); the last active administrator cannot be
        erased (409). Every process forgets the user once this commits."""
        # First, and before this row is locked: it takes the admin rows' locks in its order.
        await users.ensure_another_admin(session, user_id)
        user = await session.get(User, user_id, with_for_update=True)
        if user is None or user.erased_at is not None:
            raise NotFound("No such account.")
        now = datetime.now(UTC)
        reviewed = list(
            await session.scalars(select(Review.course_id).where(Review.user_id == user_id))
        )
        for model in (Progress, Enrollment, Review, UserBadge, RefreshToken):
            await session.execute(delete(model).where(model.user_id == user_id))
        for course_id in reviewed:
            await reviews.refresh_rating(session, course_id)
        # Financial records stay for accounting, without the person.
        await session.execute(
            update(Payment).where(Payment.user_id == user_id).values(user_id=None)
        )
        await session.execute(
            update(Subscription).where(Subscription.user_id == user_id).values(user_id=None)
        )
        await session.execute(delete(OutboxMessage).where(OutboxMessage.recipient_id == user_id))
        # The audit trail keeps what happened, not who it was or where they were.
        await session.execute(
            update(AuditLog)
            .where(AuditLog.actor_id == user_id)
            .values(ip=None, user_agent=None, details={})
        )
        await session.execute(
            update(AuditLog)
            .where(AuditLog.details["email"].astext == user.email)
            .values(details={}, ip=None, user_agent=None)
        )
        user.email = f"erased-{user.id}@erased.invalid"
        user.name = "Erased user"
        user.subject = f"erased:{user.id}"
        user.password_hash = None
        user.preferences = {}
        user.demographics = {}
        user.stripe_customer_id = None
        user.email_verified = False
        user.last_login_at = None
        user.erased_at = now
        user.tokens_valid_after = now
        await session.flush()
        # Recorded without the person: the trail shows an erasure happened, not who it was.
        await audit.record(
            session, actor_id=user_id, action="privacy.erase", resource_type="user",
            resource_id=user_id,
        )  # fmt: skip
        publish(session, UserChanged(user_id))
        if reviewed:  # their ratings left the courses' averages
            publish(session, CatalogChanged())
        await commit(session)


privacy = PrivacyService()
