"""The Stripe gateway against the fake, through Stripe's own library: timeouts and retries with
the same idempotency key, the breaker, and Stripe's errors mapped to ours."""

from __future__ import annotations

import pytest

from momentum_dev.fakes.stripe import FakeStripe
from momentum_dev.fakes.stripe_wire import parse_form
from momentum_domain.commerce.stripe_client import (
    PaymentProviderError,
    PaymentsUnavailable,
    StripeGateway,
)
from momentum_domain.config import Settings
from momentum_domain.errors import Conflict
from momentum_domain.kit.resilience import CircuitBreaker


def test_stripes_form_encoding_is_parsed() -> None:
    body = (
        "mode=payment&line_items[0][quantity]=1&line_items[0][price_data][currency]=usd"
        "&line_items[1][price]=price_x&metadata[user_id]=u1&expand[0]=customer&empty="
    )
    assert parse_form(body) == {
        "mode": "payment",
        "line_items": [
            {"quantity": "1", "price_data": {"currency": "usd"}},
            {"price": "price_x"},
        ],
        "metadata": {"user_id": "u1"},
        "expand": ["customer"],
        "empty": "",
    }


async def test_a_timeout_is_retried_with_the_same_idempotency_key(
    commerce_settings: Settings, fake_stripe: FakeStripe
) -> None:
    gateway = StripeGateway(commerce_settings, timeout=0.3, max_network_retries=1)
    fake_stripe.delay_next(1.0, path="/v1/customers")
    try:
        customer = await gateway.create_customer({"email": "a@example.com"}, idempotency_key="k1")
    finally:
        await gateway.aclose()
    calls = fake_stripe.requests_to("POST", "/v1/customers")
    assert [c.idempotency_key for c in calls] == ["k1", "k1"]
    # The first attempt was slow, not lost: Stripe made the customer once and replayed it.
    assert calls[1].replayed is True
    assert list(fake_stripe.customers) == [customer]


async def test_the_breaker_stops_calling_a_failing_stripe(
    commerce_settings: Settings, fake_stripe: FakeStripe
) -> None:
    breaker = CircuitBreaker("stripe-test", failure_threshold=2, reset_after=60)
    gateway = StripeGateway(commerce_settings, max_network_retries=0, breaker=breaker)
    fake_stripe.fail_next(503, times=2)
    try:
        for key in ("a", "b", "c"):
            with pytest.raises(PaymentsUnavailable):
                await gateway.create_customer({"email": "a@example.com"}, idempotency_key=key)
    finally:
        await gateway.aclose()
    assert len(fake_stripe.requests) == 2  # the third call never left


async def test_stripe_errors_become_ours(
    commerce_settings: Settings, fake_stripe: FakeStripe
) -> None:
    gateway = StripeGateway(commerce_settings, max_network_retries=0)
    wrong_key = StripeGateway(
        commerce_settings.model_copy(update={"stripe_api_key": "sk_test_wrong"}),
        max_network_retries=0,
    )
    try:
        await gateway.create_customer({"email": "a@example.com"}, idempotency_key="same")
        with pytest.raises(Conflict) as reused:
            await gateway.create_customer({"email": "b@example.com"}, idempotency_key="same")
        assert reused.value.extra == {"provider_error": "idempotency_error"}

        with pytest.raises(PaymentProviderError) as missing:
            await gateway.create_checkout_session(
                {
                    "mode": "subscription",
                    "customer": "cus_missing",
                    "line_items": [{"price": "price_premium_monthly", "quantity": 1}],
                    "success_url": "https://example.com",
                },
                idempotency_key="cs",
            )
        assert missing.value.status_code == 502
        assert missing.value.extra == {"provider_error": "resource_missing"}
        assert "No such customer: 'cus_missing'" in missing.value.detail

        with pytest.raises(PaymentProviderError):
            await wrong_key.create_customer({"email": "a@example.com"}, idempotency_key="k")
    finally:
        await gateway.aclose()
        await wrong_key.aclose()
    assert fake_stripe.requests[-1].status == 401
