"""Reading what Stripe sends and is sent: references that may be ids or expanded objects,
timestamps, metadata, lists, the subscription columns we mirror, and the digest of a call's
parameters that ends its idempotency key."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def params_digest(params: Mapping[str, Any]) -> str:
    encoded = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()[:16]


def stripe_id(value: Any) -> str | None:
    """A Stripe reference: an id string, or an expanded object carrying one."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def as_uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def as_datetime(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int) and value > 0 else None


def dig(obj: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(name)
    return obj


def metadata_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def list_data(value: Any) -> list[dict[str, Any]]:
    data = value.get("data") if isinstance(value, dict) else None
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


def subscription_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Our columns from a Stripe subscription object. Newer API versions keep the billing
    period on the items; older ones on the subscription itself."""
    items = list_data(obj.get("items"))
    first = items[0] if items else {}
    period_ends = [item["current_period_end"] for item in items if "current_period_end" in item]
    period_end = obj.get("current_period_end") or max(
        (end for end in period_ends if isinstance(end, int)), default=None
    )
    interval = dig(first, "price", "recurring", "interval") or dig(first, "plan", "interval")
    return {
        "stripe_customer_id": stripe_id(obj.get("customer")) or "",
        "stripe_price_id": str(dig(first, "price", "id") or dig(first, "plan", "id") or "")[:255],
        "status": str(obj.get("status"))[:40],
        "interval": str(interval or "")[:10],
        "current_period_end": as_datetime(period_end),
        "cancel_at_period_end": bool(obj.get("cancel_at_period_end")),
        "canceled_at": as_datetime(obj.get("canceled_at")),
    }
