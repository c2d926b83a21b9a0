"""Payments through Stripe: Checkout for one course or for the premium subscription, the
webhook that records what happened, refunds, and a user's view of their payments.

Every call to Stripe carries an idempotency key made from our own ids and the state it acts on,
so a repeated request (a double click, a retry after a crash) replays the first answer instead of
doing the work twice, while a request made from a new state gets a new key:

- ``customer:{user_id}:{params digest}``: one customer per user.
- ``checkout:course:{user_id}:{course_id}:after:{previous session id or none}:{params digest}``:
  clicks while a Checkout Session is open return that session (looked up first, the key covers
  concurrent clicks); once it has expired, the previous session id changes the key, so a new one
  is made. The payment row's id is derived from the key, so concurrent clicks record one row.
- ``checkout:subscription:{user_id}:{price_id}:after:{newest session id or none}:{digest}``.
- ``refund:{payment_id}:{refunded so far}:{amount}``: the same refund retried replays; a second
  refund of the same amount, made after the first was recorded, is a new refund.
- ``subscription-cancel:{subscription_id}:{state version}``.

Webhook events are stored once (``processed_webhook_events``) in the transaction that applies
them, so a redelivery changes nothing. Subscription state is copied from the subscription object
an event carries, and an event older than the newest one applied is ignored: the order events
arrive in does not matter.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.audit.service import audit
from momentum_domain.catalog.models import Course
from momentum_domain.catalog.service import catalog
from momentum_domain.commerce.entitlements import (
    ACTIVE_SUBSCRIPTION_STATUSES,
    has_active_subscription,
    may_open_course,
)
from momentum_domain.commerce.models import (
    Payment,
    PaymentKind,
    PaymentStatus,
    ProcessedWebhookEvent,
    Subscription,
)
from momentum_domain.commerce.stripe_client import PaymentProviderError, RefundInfo, StripeGateway
from momentum_domain.config import Settings
from momentum_domain.errors import BadRequest, Conflict, NotFound
from momentum_domain.users.models import Role, User

if TYPE_CHECKING:
    from stripe.params import CustomerCreateParams
    from stripe.params.checkout import SessionCreateParams

logger = logging.getLogger(__name__)

WEBHOOK_PROVIDER = "stripe"
# Namespace of the payment ids derived from idempotency keys (uuid5).
PAYMENT_ID_NAMESPACE = uuid.UUID("6f1d0c52-8d0e-4b8a-9a7e-3b2f5c1e9d40")
# A subscription in one of these states never changes again at Stripe.
TERMINAL_SUBSCRIPTION_STATUSES = ("canceled", "incomplete_expired")
CANCELLABLE_SUBSCRIPTION_STATUSES = ("active", "trialing", "past_due", "unpaid")
REFUNDABLE_STATUSES = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED)
PAID_STATUSES = (*REFUNDABLE_STATUSES, PaymentStatus.REFUNDED)
# Refunds in these states move money back (or will): they count as refunded.
COUNTED_REFUND_STATUSES = ("succeeded", "pending", "requires_action")

Interval = Literal["month", "year"]
EventHandler = Callable[[AsyncSession, dict[str, Any], datetime], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class CheckoutStart:
    checkout_url: str
    session_id: str


def _digest(params: Mapping[str, Any]) -> str:
    encoded = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()[:16]


def _id(value: Any) -> str | None:
    """A Stripe reference: an id string, or an expanded object carrying one."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _timestamp(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int) and value > 0 else None


def _dig(obj: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(name)
    return obj


def _metadata(obj: Mapping[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def _list_data(value: Any) -> list[dict[str, Any]]:
    data = value.get("data") if isinstance(value, dict) else None
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


def subscription_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Our columns from a Stripe subscription object. Newer API versions keep the billing
    period on the items; older ones on the subscription itself."""
    items = _list_data(obj.get("items"))
    first = items[0] if items else {}
    period_ends = [item["current_period_end"] for item in items if "current_period_end" in item]
    period_end = obj.get("current_period_end") or max(
        (end for end in period_ends if isinstance(end, int)), default=None
    )
    interval = _dig(first, "price", "recurring", "interval") or _dig(first, "plan", "interval")
    return {
        "stripe_customer_id": _id(obj.get("customer")) or "",
        "stripe_price_id": str(_dig(first, "price", "id") or _dig(first, "plan", "id") or "")[:255],
        "status": str(obj.get("status"))[:40],
        "interval": str(interval or "")[:10],
        "current_period_end": _timestamp(period_end),
        "cancel_at_period_end": bool(obj.get("cancel_at_period_end")),
        "canceled_at": _timestamp(obj.get("canceled_at")),
    }


class CommerceService:
    def __init__(self) -> None:
        self._handlers: dict[str, EventHandler] = {
            "checkout.session.completed": self._checkout_completed,
            "checkout.session.async_payment_succeeded": self._checkout_completed,
            "checkout.session.async_payment_failed": self._checkout_abandoned,
            "checkout.session.expired": self._checkout_abandoned,
            "payment_intent.payment_failed": self._payment_intent_failed,
            "charge.refunded": self._charge_refunded,
            "customer.subscription.created": self._subscription_changed,
            "customer.subscription.updated": self._subscription_changed,
            "customer.subscription.deleted": self._subscription_changed,
            "invoice.paid": self._invoice_paid,
            "invoice.payment_failed": self._invoice_payment_failed,
        }

    # ---- checkout ---------------------------------------------------------------------------

    async def _user(self, session: AsyncSession, user_id: uuid.UUID) -> User:
        user = await session.get(User, user_id)
        if user is None or user.erased_at is not None:
            raise NotFound("No such user.")
        return user

    async def ensure_customer(
        self, session: AsyncSession, gateway: StripeGateway, user: User
    ) -> str:
        """The user's Stripe customer, created once. It is committed at once: Stripe holds the
        customer from now on, whatever happens to the rest of the request. Concurrent callers
        send the same idempotency key, get the same customer, and the first write wins."""
        if user.stripe_customer_id:
            return user.stripe_customer_id
        params: CustomerCreateParams = {
            "email": user.email,
            "name": user.name,
            "metadata": {"user_id": str(user.id)},
        }
        customer_id = await gateway.create_customer(
            params, idempotency_key=f"customer:{user.id}:{_digest(params)}"
        )
        await session.execute(
            update(User)
            .where(User.id == user.id, User.stripe_customer_id.is_(None))
            .values(stripe_customer_id=customer_id)
            .execution_options(synchronize_session=False)
        )
        await session.commit()
        # A concurrent request may have stored its customer first (the same one, normally).
        await session.refresh(user)
        assert user.stripe_customer_id is not None
        return user.stripe_customer_id

    async def start_course_checkout(
        self,
        session: AsyncSession,
        gateway: StripeGateway,
        settings: Settings,
        *,
        user_id: uuid.UUID,
        course_ref: str,
    ) -> CheckoutStart:
        """A Checkout Session for one paid course, recorded as a PENDING payment."""
        user = await self._user(session, user_id)
        course = await catalog.get_course(session, course_ref)
        if await may_open_course(session, user_id=user.id, course=course):
            raise Conflict("You can already open this course.", extra={"course_id": str(course.id)})
        if course.price_cents <= 0:
            raise Conflict(
                "This course is not sold on its own: it comes with the premium subscription.",
                extra={"course_id": str(course.id)},
            )
        latest = await session.scalar(
            select(Payment)
            .where(
                Payment.user_id == user.id,
                Payment.course_id == course.id,
                Payment.kind == PaymentKind.COURSE,
            )
            .order_by(Payment.created_at.desc(), Payment.id.desc())
            .limit(1)
        )
        if (
            latest is not None
            and latest.status in (PaymentStatus.PENDING, PaymentStatus.FAILED)
            and latest.stripe_checkout_session_id
        ):
            current = await gateway.retrieve_checkout_session(latest.stripe_checkout_session_id)
            if current.status == "open" and current.url:
                return CheckoutStart(current.url, current.id)
            if current.status == "complete":
                raise Conflict(
                    "This purchase is being completed; the course opens in a moment.",
                    extra={"session_id": current.id},
                )
            if latest.status is PaymentStatus.PENDING:  # expired: that attempt is over
                latest.status = PaymentStatus.FAILED
        customer_id = await self.ensure_customer(session, gateway, user)

        previous = (latest.stripe_checkout_session_id if latest else None) or "none"
        metadata = {
            "kind": PaymentKind.COURSE.value,
            "user_id": str(user.id),
            "course_id": str(course.id),
        }
        params: SessionCreateParams = {
            "mode": "payment",
            "customer": customer_id,
            "client_reference_id": str(user.id),
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": course.currency,
                        "unit_amount": course.price_cents,
                        "product_data": {
                            "name": course.title,
                            "metadata": {"course_id": str(course.id)},
                        },
                    },
                }
            ],
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
            "success_url": (
                f"{settings.frontend_url}/checkout/success?session_id={{CHECKOUT_SESSION_ID}}"
            ),
            "cancel_url": f"{settings.frontend_url}/courses/{course.slug}?checkout=cancelled",
        }
        key = f"checkout:course:{user.id}:{course.id}:after:{previous}:{_digest(params)}"
        payment_id = uuid.uuid5(PAYMENT_ID_NAMESPACE, key)
        metadata["payment_id"] = str(payment_id)  # shared by the session and its payment intent
        created = await gateway.create_checkout_session(params, idempotency_key=key)
        await session.execute(
            insert(Payment)
            .values(
                id=payment_id,
                user_id=user.id,
                course_id=course.id,
                kind=PaymentKind.COURSE,
                status=PaymentStatus.PENDING,
                stripe_checkout_session_id=created.id,
                amount_cents=course.price_cents,
                currency=course.currency,
                refunded_amount_cents=0,
            )
            .on_conflict_do_nothing()
        )
        if not created.url:
            raise PaymentProviderError("Stripe returned a Checkout Session without a URL.")
        return CheckoutStart(created.url, created.id)

    async def start_subscription_checkout(
        self,
        session: AsyncSession,
        gateway: StripeGateway,
        settings: Settings,
        *,
        user_id: uuid.UUID,
        interval: Interval,
    ) -> CheckoutStart:
        """A Checkout Session for the premium subscription, monthly or yearly."""
        user = await self._user(session, user_id)
        if user.role in (Role.PREMIUM, Role.ADMIN) or await has_active_subscription(
            session, user.id
        ):
            raise Conflict("You already have premium access.")
        price = (
            settings.stripe_price_premium_monthly
            if interval == "month"
            else settings.stripe_price_premium_yearly
        )
        customer_id = await self.ensure_customer(session, gateway, user)
        earlier = [
            checkout
            for checkout in await gateway.list_checkout_sessions(customer=customer_id)
            if checkout.mode == "subscription" and checkout.metadata.get("price_id") == price
        ]
        for checkout in earlier:
            if checkout.status == "open" and checkout.url:
                return CheckoutStart(checkout.url, checkout.id)
        previous = earlier[0].id if earlier else "none"
        params: SessionCreateParams = {
            "mode": "subscription",
            "customer": customer_id,
            "client_reference_id": str(user.id),
            "line_items": [{"price": price, "quantity": 1}],
            "metadata": {
                "kind": PaymentKind.SUBSCRIPTION.value,
                "user_id": str(user.id),
                "interval": interval,
                "price_id": price,
            },
            "subscription_data": {"metadata": {"user_id": str(user.id)}},
            "success_url": (
                f"{settings.frontend_url}/premium/success?session_id={{CHECKOUT_SESSION_ID}}"
            ),
            "cancel_url": f"{settings.frontend_url}/premium?checkout=cancelled",
        }
        key = f"checkout:subscription:{user.id}:{price}:after:{previous}:{_digest(params)}"
        created = await gateway.create_checkout_session(params, idempotency_key=key)
        if not created.url:
            raise PaymentProviderError("Stripe returned a Checkout Session without a URL.")
        return CheckoutStart(created.url, created.id)

    # ---- webhook ----------------------------------------------------------------------------

    async def handle_event(self, session: AsyncSession, event: Mapping[str, Any]) -> bool:
        """Apply a verified Stripe event once, in the caller's transaction. False for an event
        already processed, which changes nothing. Unknown types are stored and otherwise
        ignored."""
        event_id, event_type = event.get("id"), event.get("type")
        obj = _dig(event, "data", "object")
        created = _timestamp(event.get("created"))
        if not isinstance(event_id, str) or not isinstance(event_type, str) or not event_id:
            raise BadRequest("The body is not a Stripe event: it lacks an id or a type.")
        if not isinstance(obj, dict) or created is None:
            raise BadRequest("The body is not a Stripe event: it lacks data.object or created.")
        first_time = await session.scalar(
            insert(ProcessedWebhookEvent)
            .values(
                provider=WEBHOOK_PROVIDER,
                event_id=event_id[:255],
                event_type=event_type[:120],
                payload=dict(event),
            )
            .on_conflict_do_nothing(index_elements=["provider", "event_id"])
            .returning(ProcessedWebhookEvent.id)
        )
        if first_time is None:
            return False
        handler = self._handlers.get(event_type)
        if handler is not None:
            await handler(session, obj, created)
        return True

    async def _lock_payment(self, session: AsyncSession, *conditions: Any) -> Payment | None:
        return await session.scalar(
            select(Payment)
            .where(*conditions)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    async def _checkout_payment(
        self, session: AsyncSession, checkout: dict[str, Any]
    ) -> Payment | None:
        """The course payment a Checkout Session belongs to. When the checkout request failed
        after Stripe made the session, the row is recreated from the session's metadata."""
        payment = await self._lock_payment(
            session, Payment.stripe_checkout_session_id == checkout["id"]
        )
        if payment is not None:
            return payment
        metadata = _metadata(checkout)
        payment_id = _uuid(metadata.get("payment_id"))
        if metadata.get("kind") != PaymentKind.COURSE.value or payment_id is None:
            return None
        user_id = _uuid(metadata.get("user_id"))
        course_id = _uuid(metadata.get("course_id"))
        if user_id is not None and await session.get(User, user_id) is None:
            user_id = None
        if course_id is not None and await session.get(Course, course_id) is None:
            course_id = None
        amount = checkout.get("amount_total")
        await session.execute(
            insert(Payment)
            .values(
                id=payment_id,
                user_id=user_id,
                course_id=course_id,
                kind=PaymentKind.COURSE,
                status=PaymentStatus.PENDING,
                stripe_checkout_session_id=checkout["id"],
                amount_cents=amount if isinstance(amount, int) and amount >= 0 else 0,
                currency=str(checkout.get("currency") or "usd")[:3],
                refunded_amount_cents=0,
            )
            .on_conflict_do_nothing()
        )
        return await self._lock_payment(session, Payment.id == payment_id)

    async def _checkout_completed(
        self, session: AsyncSession, checkout: dict[str, Any], created: datetime
    ) -> None:
        if checkout.get("mode") == "subscription":
            await self._link_subscription_checkout(session, checkout)
            return
        if checkout.get("mode") != "payment":
            return
        payment = await self._checkout_payment(session, checkout)
        if payment is None:
            logger.warning("checkout session %s matches no payment", checkout.get("id"))
            return
        intent = _id(checkout.get("payment_intent"))
        if intent and payment.stripe_payment_intent_id is None:
            payment.stripe_payment_intent_id = intent
        paid = checkout.get("payment_status") in ("paid", "no_payment_required")
        if paid and payment.status in (PaymentStatus.PENDING, PaymentStatus.FAILED):
            payment.status = PaymentStatus.SUCCEEDED
            amount = checkout.get("amount_total")
            if isinstance(amount, int) and amount >= payment.refunded_amount_cents:
                payment.amount_cents = amount
        await session.flush()

    async def _checkout_abandoned(
        self, session: AsyncSession, checkout: dict[str, Any], created: datetime
    ) -> None:
        """An expired session, or an asynchronous payment method that failed."""
        payment = await self._lock_payment(
            session, Payment.stripe_checkout_session_id == checkout.get("id")
        )
        if payment is not None and payment.status is PaymentStatus.PENDING:
            payment.status = PaymentStatus.FAILED
            await session.flush()

    async def _link_subscription_checkout(
        self, session: AsyncSession, checkout: dict[str, Any]
    ) -> None:
        """Tie the customer and the subscription of a completed subscription checkout to the
        user who started it. The subscription's state comes from its own events."""
        user_id = _uuid(_metadata(checkout).get("user_id") or checkout.get("client_reference_id"))
        # The user row first, as everywhere a subscription and a role change together.
        user = (
            await session.scalar(
                select(User)
                .where(User.id == user_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
            if user_id
            else None
        )
        if user is None:
            return
        customer = _id(checkout.get("customer"))
        if customer and user.stripe_customer_id is None:
            owner = await session.scalar(select(User.id).where(User.stripe_customer_id == customer))
            if owner is None:
                await session.execute(
                    update(User)
                    .where(User.id == user.id, User.stripe_customer_id.is_(None))
                    .values(stripe_customer_id=customer)
                )
        subscription_id = _id(checkout.get("subscription"))
        if subscription_id:
            linked = await session.scalar(
                update(Subscription)
                .where(
                    Subscription.stripe_subscription_id == subscription_id,
                    Subscription.user_id.is_(None),
                )
                .values(user_id=user.id)
                .returning(Subscription.id)
            )
            if linked is not None:
                await self._sync_role(session, user.id)

    async def _payment_intent_failed(
        self, session: AsyncSession, intent: dict[str, Any], created: datetime
    ) -> None:
        payment = await self._lock_payment(
            session, Payment.stripe_payment_intent_id == intent["id"]
        )
        if payment is None and (payment_id := _uuid(_metadata(intent).get("payment_id"))):
            payment = await self._lock_payment(session, Payment.id == payment_id)
        if payment is None:
            return
        if payment.stripe_payment_intent_id is None:
            payment.stripe_payment_intent_id = str(intent["id"])
        # A later successful attempt on the same checkout still completes it.
        if payment.status is PaymentStatus.PENDING:
            payment.status = PaymentStatus.FAILED
        await session.flush()

    async def _charge_refunded(
        self, session: AsyncSession, charge: dict[str, Any], created: datetime
    ) -> None:
        """``amount_refunded`` is the charge's running total, so applying it is idempotent and
        never adds to what the refund endpoint already recorded."""
        intent = _id(charge.get("payment_intent"))
        total = charge.get("amount_refunded")
        if not intent or not isinstance(total, int):
            return
        payment = await self._lock_payment(session, Payment.stripe_payment_intent_id == intent)
        if payment is None and (payment_id := _uuid(_metadata(charge).get("payment_id"))):
            # The refund overtook the checkout's completion event.
            payment = await self._lock_payment(session, Payment.id == payment_id)
            if payment is not None and payment.stripe_payment_intent_id is None:
                payment.stripe_payment_intent_id = intent
        if payment is None:
            logger.warning("charge.refunded for payment intent %s matches no payment", intent)
            return
        if payment.status not in PAID_STATUSES:
            if charge.get("status") != "succeeded":
                return
            payment.status = PaymentStatus.SUCCEEDED
        self._apply_refunded_total(payment, total)
        await session.flush()

    @staticmethod
    def _apply_refunded_total(payment: Payment, total: int) -> None:
        refunded = min(payment.amount_cents, max(payment.refunded_amount_cents, total))
        payment.refunded_amount_cents = refunded
        if refunded >= payment.amount_cents:
            payment.status = PaymentStatus.REFUNDED
        elif refunded > 0:
            payment.status = PaymentStatus.PARTIALLY_REFUNDED

    async def _subscription_user(
        self, session: AsyncSession, subscription: Mapping[str, Any]
    ) -> uuid.UUID | None:
        user_id = _uuid(_metadata(subscription).get("user_id"))
        if user_id is not None and await session.get(User, user_id) is not None:
            return user_id
        customer = _id(subscription.get("customer"))
        if customer is None:
            return None
        return await session.scalar(select(User.id).where(User.stripe_customer_id == customer))

    async def _subscription_changed(
        self, session: AsyncSession, subscription: dict[str, Any], created: datetime
    ) -> None:
        await self.apply_subscription(session, subscription, created)

    async def apply_subscription(
        self, session: AsyncSession, subscription: Mapping[str, Any], as_of: datetime
    ) -> Subscription | None:
        """Copy a Stripe subscription object into our mirror, unless the mirror already holds a
        newer state (``as_of`` older than the stored one) or a final one (a canceled subscription
        never comes back). Then the user's role follows. None when the object was stale."""
        if not isinstance(subscription.get("id"), str) or not subscription.get("status"):
            return None
        user_id = await self._subscription_user(session, subscription)
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
            await self._sync_role(session, applied.user_id)
        return applied

    async def _sync_role(self, session: AsyncSession, user_id: uuid.UUID) -> None:
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

    async def _invoice_user(
        self, session: AsyncSession, invoice: Mapping[str, Any]
    ) -> uuid.UUID | None:
        customer = _id(invoice.get("customer"))
        if customer:
            user_id = await session.scalar(
                select(User.id).where(User.stripe_customer_id == customer)
            )
            if user_id is not None:
                return user_id
        subscription_id = _id(invoice.get("subscription")) or _id(
            _dig(invoice, "parent", "subscription_details", "subscription")
        )
        if subscription_id:
            return await session.scalar(
                select(Subscription.user_id).where(
                    Subscription.stripe_subscription_id == subscription_id
                )
            )
        return None

    @staticmethod
    def _invoice_payment_intent(invoice: Mapping[str, Any]) -> str | None:
        legacy = _id(invoice.get("payment_intent"))
        if legacy:
            return legacy
        for item in _list_data(invoice.get("payments")):
            intent = _id(_dig(item, "payment", "payment_intent"))
            if intent:
                return intent
        return None

    async def _invoice_paid(
        self, session: AsyncSession, invoice: dict[str, Any], created: datetime
    ) -> None:
        """One SUBSCRIPTION payment per paid invoice (a failed one that is paid later becomes
        SUCCEEDED). Invoices of nothing (a trial) are not payments."""
        amount = invoice.get("amount_paid")
        if not isinstance(amount, int) or amount <= 0:
            return
        stmt = insert(Payment).values(
            id=uuid.uuid4(),
            user_id=await self._invoice_user(session, invoice),
            course_id=None,
            kind=PaymentKind.SUBSCRIPTION,
            status=PaymentStatus.SUCCEEDED,
            stripe_invoice_id=invoice["id"],
            stripe_payment_intent_id=self._invoice_payment_intent(invoice),
            amount_cents=amount,
            currency=str(invoice.get("currency") or "usd")[:3],
            refunded_amount_cents=0,
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[Payment.stripe_invoice_id],
                set_={
                    "status": PaymentStatus.SUCCEEDED,
                    "amount_cents": stmt.excluded.amount_cents,
                    "stripe_payment_intent_id": func.coalesce(
                        Payment.stripe_payment_intent_id, stmt.excluded.stripe_payment_intent_id
                    ),
                },
                where=Payment.status.in_([PaymentStatus.PENDING, PaymentStatus.FAILED]),
            )
        )

    async def _invoice_payment_failed(
        self, session: AsyncSession, invoice: dict[str, Any], created: datetime
    ) -> None:
        """Recorded as a FAILED subscription payment, unless the invoice was paid meanwhile.
        Access follows the subscription's status, which Stripe updates (past_due, unpaid,
        canceled) in subscription events."""
        amount = invoice.get("amount_due")
        if not isinstance(amount, int) or amount <= 0:
            return
        await session.execute(
            insert(Payment)
            .values(
                id=uuid.uuid4(),
                user_id=await self._invoice_user(session, invoice),
                course_id=None,
                kind=PaymentKind.SUBSCRIPTION,
                status=PaymentStatus.FAILED,
                stripe_invoice_id=invoice["id"],
                stripe_payment_intent_id=self._invoice_payment_intent(invoice),
                amount_cents=amount,
                currency=str(invoice.get("currency") or "usd")[:3],
                refunded_amount_cents=0,
            )
            .on_conflict_do_nothing()
        )

    # ---- refunds ----------------------------------------------------------------------------

    async def refund(
        self,
        session: AsyncSession,
        gateway: StripeGateway,
        *,
        payment_id: uuid.UUID,
        amount_cents: int | None,
        reason: str,
    ) -> tuple[Payment, RefundInfo]:
        """Refund a payment fully (the default: whatever remains) or partly through Stripe.
        The payment row stays locked during the call, so concurrent refunds and the
        ``charge.refunded`` webhook wait for it and then see its result."""
        payment = await self._lock_payment(session, Payment.id == payment_id)
        if payment is None:
            raise NotFound("No such payment.")
        if payment.status not in REFUNDABLE_STATUSES or not payment.stripe_payment_intent_id:
            raise Conflict(
                f"A {payment.status.value} payment cannot be refunded.",
                extra={"status": payment.status.value},
            )
        remaining = payment.amount_cents - payment.refunded_amount_cents
        amount = remaining if amount_cents is None else amount_cents
        if amount > remaining:
            raise Conflict(
                f"Only {remaining} of {payment.amount_cents} cents remain to be refunded.",
                extra={"refundable_cents": remaining},
            )
        refund = await gateway.create_refund(
            {
                "payment_intent": payment.stripe_payment_intent_id,
                "amount": amount,
                "reason": "requested_by_customer",
                "metadata": {"payment_id": str(payment.id), "reason": reason[:500]},
            },
            idempotency_key=f"refund:{payment.id}:{payment.refunded_amount_cents}:{amount}",
        )
        if refund.status in COUNTED_REFUND_STATUSES:
            self._apply_refunded_total(payment, payment.refunded_amount_cents + refund.amount)
        payment.refund_reason = reason
        await session.flush()
        return payment, refund

    # ---- a user's payments and subscription -------------------------------------------------

    async def my_payments(
        self, session: AsyncSession, user_id: uuid.UUID, *, limit: int, offset: int
    ) -> tuple[list[tuple[Payment, str | None]], int]:
        """Payments that happened or were attempted; checkouts still open are not listed."""
        condition = and_(Payment.user_id == user_id, Payment.status != PaymentStatus.PENDING)
        rows = await session.execute(
            select(Payment, Course.title)
            .outerjoin(Course, Course.id == Payment.course_id)
            .where(condition)
            .order_by(Payment.created_at.desc(), Payment.id)
            .limit(limit)
            .offset(offset)
        )
        total = await session.scalar(select(func.count()).select_from(Payment).where(condition))
        return [(payment, title) for payment, title in rows.all()], int(total or 0)

    async def my_subscription(
        self, session: AsyncSession, user_id: uuid.UUID
    ) -> Subscription | None:
        """The user's current subscription: an active one first, else the newest."""
        return await session.scalar(
            select(Subscription)
            .where(Subscription.user_id == user_id)
            .order_by(
                case((Subscription.status.in_(ACTIVE_SUBSCRIPTION_STATUSES), 0), else_=1),
                Subscription.created_at.desc(),
            )
            .limit(1)
        )

    async def cancel_subscription(
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
        applied = await self.apply_subscription(
            session, updated, max(now, stored) if stored else now
        )
        return applied or subscription

    # ---- administration ---------------------------------------------------------------------

    async def get_payment(self, session: AsyncSession, payment_id: uuid.UUID) -> Payment:
        payment = await session.get(Payment, payment_id)
        if payment is None:
            raise NotFound("No such payment.")
        return payment

    async def list_payments(
        self,
        session: AsyncSession,
        *,
        status: PaymentStatus | None = None,
        user_id: uuid.UUID | None = None,
        course_id: uuid.UUID | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[Payment], int]:
        conditions = []
        if status is not None:
            conditions.append(Payment.status == status)
        if user_id is not None:
            conditions.append(Payment.user_id == user_id)
        if course_id is not None:
            conditions.append(Payment.course_id == course_id)
        rows = await session.scalars(
            select(Payment)
            .where(*conditions)
            .order_by(Payment.created_at.desc(), Payment.id)
            .limit(limit)
            .offset(offset)
        )
        total = await session.scalar(select(func.count()).select_from(Payment).where(*conditions))
        return list(rows), int(total or 0)


commerce = CommerceService()

__all__ = ["CheckoutStart", "CommerceService", "Interval", "commerce", "subscription_fields"]
