"""A small wrapper around Stripe's own Python library: the calls payments make, each with our
idempotency key, a timeout, the library's bounded retries (exponential back-off with jitter on
connection errors, 409 and 5xx) and a circuit breaker; Stripe's errors become ours.

``stripe_api_base`` points the library at another server speaking Stripe's wire format (the
test suite's fake); unset, it talks to Stripe itself.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import stripe

from momentum_domain.config import Settings
from momentum_domain.deployment import placeholder_problem
from momentum_domain.errors import BadRequest, Conflict, MomentumError, ServiceUnavailable
from momentum_domain.kit.resilience import CircuitBreaker

if TYPE_CHECKING:
    from stripe.params import (
        CustomerCreateParams,
        RefundCreateParams,
        SubscriptionUpdateParams,
    )
    from stripe.params.checkout import SessionCreateParams

logger = logging.getLogger(__name__)

T = TypeVar("T")

TIMEOUT_SECONDS = 20.0
MAX_NETWORK_RETRIES = 2


class PaymentProviderError(MomentumError):
    """Stripe refused a request we expected it to accept (a bug or a misconfiguration)."""

    status_code = 502
    title = "Bad gateway"


class PaymentsUnavailable(ServiceUnavailable):
    """Stripe could not be reached, or kept failing after the retries."""


class PaymentsNotConfigured(MomentumError):
    """The API key is a placeholder while talking to Stripe itself: no request can succeed
    until an operator sets a real key, so nothing is sent and nothing says "try again". A 500
    (problem type .../payments-not-configured, no Retry-After): the server's fault, alarmed on
    like any server error; a 503 would tell clients to retry."""

    status_code = 500
    title = "Payments not configured"


@dataclass(frozen=True, slots=True)
class CheckoutSessionInfo:
    id: str
    url: str | None
    status: str | None  # open, complete, expired
    mode: str
    metadata: dict[str, str]
    created: int


@dataclass(frozen=True, slots=True)
class RefundInfo:
    id: str
    amount: int
    status: str | None  # pending, requires_action, succeeded, failed, canceled


def _checkout_session(session: stripe.checkout.Session) -> CheckoutSessionInfo:
    return CheckoutSessionInfo(
        id=session.id,
        url=session.url,
        status=session.status,
        mode=session.mode,
        metadata=dict(session.metadata.to_dict()) if session.metadata else {},
        created=session.created,
    )


class _HTTPXClient(stripe.HTTPXClient):
    """Stripe's httpx client, sending the encoded body as ``content`` (httpx deprecates raw
    bytes passed as ``data``)."""

    def _get_request_args_kwargs(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any
    ) -> list[Any]:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        if isinstance(kwargs.get("data"), str | bytes):
            kwargs["content"] = kwargs.pop("data")
        return [args, kwargs]


class StripeGateway:
    """One per process: it holds the HTTP connection pool and the breaker."""

    def __init__(
        self,
        settings: Settings,
        *,
        timeout: float = TIMEOUT_SECONDS,
        max_network_retries: int = MAX_NETWORK_RETRIES,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._http = _HTTPXClient(timeout=timeout)
        self._client = stripe.StripeClient(
            settings.stripe_api_key,
            base_addresses={"api": settings.stripe_api_base} if settings.stripe_api_base else None,
            max_network_retries=max_network_retries,
            http_client=self._http,
        )
        self._breaker = breaker or CircuitBreaker("stripe", failure_threshold=5, reset_after=30.0)
        # A fake Stripe (stripe_api_base) takes any key; Stripe itself never takes a placeholder.
        self._not_configured = (
            None if settings.stripe_api_base else placeholder_problem(settings, "stripe_api_key")
        )
        if self._not_configured:
            logger.warning("payments are off: %s", self._not_configured)

    async def aclose(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]

    async def _call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        if self._not_configured:
            raise PaymentsNotConfigured(
                f"Stripe is not configured: set MOMENTUM_STRIPE_API_KEY ({self._not_configured})."
            )
        if self._breaker.is_open:
            raise PaymentsUnavailable("Payments are unavailable for a moment; try again shortly.")
        try:
            result = await call()
        except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
            # Already retried by the library where retrying is safe.
            self._breaker.record_failure()
            logger.warning("stripe %s failed: %s", what, exc)
            raise PaymentsUnavailable(
                "The payment provider is not answering; try again shortly."
            ) from exc
        except stripe.IdempotencyError as exc:
            self._breaker.record_success()
            raise Conflict(
                "The same request was already made with different details; repeat it exactly.",
                extra={"provider_error": "idempotency_error"},
            ) from exc
        except stripe.InvalidRequestError as exc:
            self._breaker.record_success()
            if exc.code in {"charge_already_refunded", "amount_too_large"}:
                raise Conflict(
                    f"Stripe refused: {exc.user_message}", extra={"provider_error": exc.code}
                ) from exc
            logger.error("stripe %s rejected: %s", what, exc)
            raise PaymentProviderError(
                f"Stripe rejected the request: {exc.user_message}",
                extra={"provider_error": exc.code},
            ) from exc
        except stripe.StripeError as exc:
            self._breaker.record_success()
            logger.error("stripe %s failed: %s", what, exc)
            raise PaymentProviderError("The payment provider refused the request.") from exc
        self._breaker.record_success()
        return result

    # ---- calls ----------------------------------------------------------------------------

    async def create_customer(self, params: CustomerCreateParams, *, idempotency_key: str) -> str:
        customer = await self._call(
            "customer create",
            lambda: self._client.v1.customers.create_async(
                params, {"idempotency_key": idempotency_key}
            ),
        )
        return customer.id

    async def create_checkout_session(
        self, params: SessionCreateParams, *, idempotency_key: str
    ) -> CheckoutSessionInfo:
        session = await self._call(
            "checkout session create",
            lambda: self._client.v1.checkout.sessions.create_async(
                params, {"idempotency_key": idempotency_key}
            ),
        )
        return _checkout_session(session)

    async def retrieve_checkout_session(self, session_id: str) -> CheckoutSessionInfo:
        session = await self._call(
            "checkout session retrieve",
            lambda: self._client.v1.checkout.sessions.retrieve_async(session_id),
        )
        return _checkout_session(session)

    async def list_checkout_sessions(
        self, *, customer: str, limit: int = 10
    ) -> list[CheckoutSessionInfo]:
        """The customer's newest Checkout Sessions first."""
        page = await self._call(
            "checkout session list",
            lambda: self._client.v1.checkout.sessions.list_async(
                {"customer": customer, "limit": limit}
            ),
        )
        return [_checkout_session(session) for session in page.data]

    async def create_refund(
        self, params: RefundCreateParams, *, idempotency_key: str
    ) -> RefundInfo:
        refund = await self._call(
            "refund create",
            lambda: self._client.v1.refunds.create_async(
                params, {"idempotency_key": idempotency_key}
            ),
        )
        return RefundInfo(id=refund.id, amount=refund.amount, status=refund.status)

    async def update_subscription(
        self, subscription_id: str, params: SubscriptionUpdateParams, *, idempotency_key: str
    ) -> dict[str, Any]:
        """The updated subscription, as the plain object a webhook would carry."""
        subscription = await self._call(
            "subscription update",
            lambda: self._client.v1.subscriptions.update_async(
                subscription_id, params, {"idempotency_key": idempotency_key}
            ),
        )
        updated: dict[str, Any] = subscription.to_dict(for_json=True)
        return updated


class InvalidWebhook(BadRequest):
    title = "Invalid webhook"


def construct_event(payload: bytes, signature: str | None, settings: Settings) -> dict[str, Any]:
    """Verify a webhook with Stripe's library (the HMAC signature over the timestamp and the raw
    body, and the timestamp's age) and return the event as a plain dict. A signed body that is
    not a JSON object is refused too: it would be Stripe's bug, or a leaked secret's."""
    try:
        stripe.WebhookSignature.verify_header(
            payload,
            signature,
            settings.stripe_webhook_secret,
            tolerance=settings.stripe_webhook_tolerance_seconds,
        )
        event = json.loads(payload)
    except stripe.SignatureVerificationError as exc:
        raise InvalidWebhook(
            "The Stripe-Signature header is missing, does not match the body, or is older than "
            f"{settings.stripe_webhook_tolerance_seconds} seconds."
        ) from exc
    except ValueError as exc:  # not UTF-8, not JSON
        raise InvalidWebhook("The body is not a Stripe event.") from exc
    if not isinstance(event, dict):
        raise InvalidWebhook("The body is not a Stripe event: not a JSON object.")
    return event


__all__ = [
    "CheckoutSessionInfo",
    "InvalidWebhook",
    "PaymentProviderError",
    "PaymentsNotConfigured",
    "PaymentsUnavailable",
    "RefundInfo",
    "StripeGateway",
    "construct_event",
]
