"""The premium subscription: our mirror of Stripe's subscription object, the role that follows
it, and a learner's view and cancellation of theirs.

State is copied from the subscription object an event (or Stripe's answer) carries, and a state
older than the newest one applied is ignored: the order events arrive in does not matter. A
cancellation's idempotency key is ``subscription-cancel:{subscription_id}:{state version}``."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.audit.service import audit
from momentum_domain.commerce.entitlements import (
    ACTIVE_SUBSCRIPTION_STATUSES,
    has_active_subscription,
)
from momentum_domain.commerce.models import Subscription
from momentum_domain.commerce.stripe_client import StripeGateway
from momentum_domain.commerce.stripe_objects import (
    as_uuid,
    metadata_of,
    stripe_id,
    subscription_fields,
)
from momentum_domain.errors import NotFound
from momentum_domain.kit.unit_of_work import commit
from momentum_domain.users.models import Role, User

logger = logging.getLogger(__name__)

# A subscription in one of these states never changes again at Stripe.
TERMINAL_SUBSCRIPTION_STATUSES = ("canceled", "incomplete_expired")
CANCELLABLE_SUBSCRIPTION_STATUSES = ("active", "trialing", "past_due", "unpaid")


class SubscriptionService:
    async def apply(
        self, session: AsyncSession, subscription: Mapping[str, Any], as_of: datetime
    ) -> Subscription | None:
        """Copy a Stripe subscription object into our mirror, unless the mirror already holds a
        newer state (``as_of`` older than the stored one) or a final one (a canceled subscription
        never comes back). Then the user's role follows. None when the object was stale."""
        if not isinstance(subscription.get("id"), str) or not subscription.get("status"):
            return None
        user_id = await self._owner(session, subscription)
        if user_id is not None:
            # One user's subscription changes and role updates happen one at a time.
            await session.scalar(select(User.id).where(User.id == user_id).with_for_update())
        fields = subscription_fields(subscription)
        stmt = insert(Subscription).values(
            id=uuid.uuid4(),
            user_id=user_id,
            stripe_subscription_id=subscription["id"],
            stripe_event_created=as_of,
            **fields,
        )
        excluded = stmt.excluded
        stmt = stmt.on_conflict_do_update(
            index_elements=[Subscription.stripe_subscription_id],
            set_={
                **{name: getattr(excluded, name) for name in fields},
                "stripe_event_created": excluded.stripe_event_created,
                "user_id": func.coalesce(Subscription.user_id, excluded.user_id),
            },
            where=and_(
                or_(
                    Subscription.stripe_event_created.is_(None),
                    excluded.stripe_event_created >= Subscription.stripe_event_created,
                ),
                or_(
                    Subscription.status.not_in(TERMINAL_SUBSCRIPTION_STATUSES),
                    excluded.status.in_(TERMINAL_SUBSCRIPTION_STATUSES),
                ),
            ),
        )
        applied = await session.scalar(
            stmt.returning(Subscription).execution_options(populate_existing=True)
        )
        if applied is None:
            logger.info("stale state for subscription %s ignored", subscription["id"])
            return None
        if applied.user_id is not None:
            await self.sync_role(session, applied.user_id)
        return applied

    async def _owner(
        self, session: AsyncSession, subscription: Mapping[str, Any]
    ) -> uuid.UUID | None:
        user_id = as_uuid(metadata_of(subscription).get("user_id"))
        if user_id is not None and await session.get(User, user_id) is not None:
            return user_id
        customer = stripe_id(subscription.get("customer"))
        if customer is None:
            return None
        return await session.scalar(select(User.id).where(User.stripe_customer_id == customer))

    async def sync_role(self, session: AsyncSession, user_id: uuid.UUID) -> None:
        """FREE <-> PREMIUM follows whether the user has an active subscription. An
        administrator keeps their role."""
        user = await session.scalar(
            select(User)
            .where(User.id == user_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if user is None or user.role is Role.ADMIN or user.erased_at is not None:
            return
        target = Role.PREMIUM if await has_active_subscription(session, user_id) else Role.FREE
        if user.role is target:
            return
        previous = user.role
        user.role = target
        await session.flush()
        await audit.record(
            session,
            actor_id=None,
            action="user.role_change",
            resource_type="user",
            resource_id=user.id,
            details={"from": previous.value, "to": target.value, "source": "stripe_subscription"},
        )

    async def current(self, session: AsyncSession, user_id: uuid.UUID) -> Subscription:
        """The user's current subscription: an active one first, else the newest."""
        found = await session.scalar(
            select(Subscription)
            .where(Subscription.user_id == user_id)
            .order_by(
                case((Subscription.status.in_(ACTIVE_SUBSCRIPTION_STATUSES), 0), else_=1),
                Subscription.created_at.desc(),
            )
            .limit(1)
        )
        if found is None:
            raise NotFound("You have no subscription.")
        return found

    async def cancel(
        self, session: AsyncSession, gateway: StripeGateway, user_id: uuid.UUID
    ) -> Subscription:
        """Cancel at the end of the paid period: access lasts until then. Repeating it changes
        nothing."""
        subscription = await session.scalar(
            select(Subscription)
            .where(
                Subscription.user_id == user_id,
                Subscription.status.in_(CANCELLABLE_SUBSCRIPTION_STATUSES),
            )
            .order_by(Subscription.created_at.desc())
            .limit(1)
        )
        if subscription is None:
            raise NotFound("You have no subscription to cancel.")
        if subscription.cancel_at_period_end:
            return subscription
        version = (
            int(subscription.stripe_event_created.timestamp())
            if subscription.stripe_event_created
            else 0
        )
        updated = await gateway.update_subscription(
            subscription.stripe_subscription_id,
            {"cancel_at_period_end": True},
            idempotency_key=f"subscription-cancel:{subscription.stripe_subscription_id}:{version}",
        )
        # Stripe's answer is the newest state there is: it wins over anything stored.
        now = datetime.now(UTC)
        stored = subscription.stripe_event_created
        applied = await self.apply(session, updated, max(now, stored) if stored else now)
        await commit(session)
        return applied or subscription


subscriptions = SubscriptionService()

__all__ = ["SubscriptionService", "subscriptions"]
