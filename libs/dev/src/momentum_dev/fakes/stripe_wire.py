"""Stripe's wire format, as the fake Stripe speaks it: object ids, the form encoding of request
bodies (``line_items[0][price_data][currency]=usd``), error bodies, and signed webhook deliveries
(``Stripe-Signature: t=<ts>,v1=<HMAC-SHA256(secret, "ts.body")>``)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import string
import time
from typing import Any
from urllib.parse import parse_qsl

API_KEY = "sk_test_fake_stripe"
API_VERSION = "2026-10-28.endive"
DAY = 24 * 3600
PRICES: dict[str, dict[str, Any]] = {
    "price_premium_monthly": {"unit_amount": 999, "currency": "usd", "interval": "month"},
    "price_premium_yearly": {"unit_amount": 9900, "currency": "usd", "interval": "year"},
}
REFUND_REASONS = {"duplicate", "fraudulent", "requested_by_customer"}
_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


# ---- Stripe's form encoding ------------------------------------------------------------------


def _tokens(key: str) -> list[str]:
    """``a[b][0][c]`` -> ``["a", "b", "0", "c"]``."""
    head, _, rest = key.partition("[")
    parts = [head]
    while rest:
        inner, _, rest = rest.partition("]")
        parts.append(inner)
        rest = rest.removeprefix("[")
    return parts


def _listify(value: Any) -> Any:
    if isinstance(value, dict):
        value = {k: _listify(v) for k, v in value.items()}
        if value and all(k.isdigit() for k in value):
            return [value[k] for k in sorted(value, key=int)]
    return value


def parse_form(text: str) -> dict[str, Any]:
    """Stripe's form encoding into nested dicts and lists (values stay strings)."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        parts = _tokens(key)
        node = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if part == "":  # a[]=x appends
                part = str(len(node))
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    result: dict[str, Any] = _listify(root)
    return result


# ---- webhooks ----------------------------------------------------------------------------------


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header value, computed the way Stripe does."""
    t = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={signature}"


def signed(
    event: dict[str, Any], secret: str, *, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """A webhook delivery: the raw body and its headers."""
    payload = json.dumps(event, indent=2)  # Stripe sends pretty-printed JSON
    return payload.encode(), {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": sign(payload, secret, timestamp),
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }


# ---- objects --------------------------------------------------------------------------------


def subscription_object(
    subscription_id: str,
    price_id: str,
    customer: str | None,
    invoice_id: str,
    metadata: dict[str, Any],
    now: int,
) -> dict[str, Any]:
    """An active subscription to one of ``PRICES``, as Stripe serialises it."""
    price = PRICES[price_id]
    period_end = now + (30 * DAY if price["interval"] == "month" else 365 * DAY)
    return {
        "id": subscription_id,
        "object": "subscription",
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "created": now,
        "currency": price["currency"],
        "customer": customer,
        "ended_at": None,
        "items": {
            "object": "list",
            "data": [
                {
                    "id": new_id("si_"),
                    "object": "subscription_item",
                    "current_period_start": now,
                    "current_period_end": period_end,
                    "price": {
                        "id": price_id,
                        "object": "price",
                        "currency": price["currency"],
                        "unit_amount": price["unit_amount"],
                        "recurring": {"interval": price["interval"]},
                        "type": "recurring",
                    },
                    "quantity": 1,
                    "subscription": subscription_id,
                }
            ],
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={subscription_id}",
        },
        "latest_invoice": invoice_id,
        "livemode": False,
        "metadata": dict(metadata),
        "status": "active",
    }


def invoice_object(
    invoice_id: str,
    price_id: str,
    customer: str | None,
    subscription_id: str,
    payment_intent_id: str,
    metadata: dict[str, Any],
    now: int,
) -> dict[str, Any]:
    """A subscription's first invoice, paid by ``payment_intent_id``."""
    price = PRICES[price_id]
    return {
        "id": invoice_id,
        "object": "invoice",
        "amount_due": price["unit_amount"],
        "amount_paid": price["unit_amount"],
        "amount_remaining": 0,
        "billing_reason": "subscription_create",
        "created": now,
        "currency": price["currency"],
        "customer": customer,
        "livemode": False,
        "parent": {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {
                "metadata": dict(metadata),
                "subscription": subscription_id,
            },
        },
        "payments": {
            "object": "list",
            "data": [
                {
                    "id": new_id("inpay_"),
                    "object": "invoice_payment",
                    "payment": {
                        "type": "payment_intent",
                        "payment_intent": payment_intent_id,
                    },
                    "status": "paid",
                }
            ],
            "has_more": False,
        },
        "status": "paid",
    }


# ---- errors ---------------------------------------------------------------------------------


class StripeFailure(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"error": {"type": type, "message": message}}
        if code:
            self.body["error"]["code"] = code
        if param:
            self.body["error"]["param"] = param
        self.headers = headers or {}


def missing(
    kind: str, object_id: str, param: str | None = None, status: int = 404
) -> StripeFailure:
    return StripeFailure(
        status, f"No such {kind}: '{object_id}'", code="resource_missing", param=param
    )
