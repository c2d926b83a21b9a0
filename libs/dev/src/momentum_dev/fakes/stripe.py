"""A local stand-in for Stripe's v1 API over real HTTP on 127.0.0.1, which Stripe's own Python
library is pointed at (``stripe_api_base``).

It speaks the parts of the wire contract payments use: form-encoded bodies with Stripe's
bracket syntax (``line_items[0][price_data][currency]=usd``), ``Authorization: Bearer <key>``,
Stripe-shaped JSON objects (``cus_``, ``cs_``, ``pi_``, ``ch_``, ``re_``, ``sub_``, ``in_`` ids
with their ``object`` names), list objects, ``{"error": {"type", "message", "code", "param"}}``
bodies with Stripe's status codes, and idempotency: a repeated ``Idempotency-Key`` with the same
parameters replays the first answer (``Idempotent-Replayed: true``), with other parameters it is
a 400 ``idempotency_error``.

It records every request (method, path, parameters, idempotency key, status) so tests assert
what was sent, and it can misbehave on demand: any status (500, 429 with or without
``Stripe-Should-Retry``), or a delay, for the next N requests, so the library's retries and our
breaker are exercised (a delay keeps the work done and only answers late, like a response
lost on the way back). Scenario helpers do what Stripe does when a customer pays
(``complete_checkout``), when a session expires, when a card is declined, or when someone
refunds from the dashboard; ``event`` wraps an object in an event and ``signed`` signs a
delivery with Stripe's scheme (``Stripe-Signature: t=<ts>,v1=<HMAC-SHA256(secret, "ts.body")>``).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import secrets
import string
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

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


# ---- the server --------------------------------------------------------------------------------


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


def _missing(
    kind: str, object_id: str, param: str | None = None, status: int = 404
) -> StripeFailure:
    return StripeFailure(
        status, f"No such {kind}: '{object_id}'", code="resource_missing", param=param
    )


@dataclass
class Fault:
    status: int | None  # None: only the delay
    delay: float = 0.0
    path: str | None = None  # only requests whose path starts with this
    type: str = "api_error"
    code: str | None = None
    message: str = "An unknown error occurred"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None
    headers: dict[str, str]
    status: int = 0
    replayed: bool = False


class FakeStripe:
    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.customers: dict[str, dict[str, Any]] = {}
            self.sessions: dict[str, dict[str, Any]] = {}
            self.session_extras: dict[str, dict[str, Any]] = {}
            self.payment_intents: dict[str, dict[str, Any]] = {}
            self.charges: dict[str, dict[str, Any]] = {}
            self.refunds: dict[str, dict[str, Any]] = {}
            self.subscriptions: dict[str, dict[str, Any]] = {}
            self.invoices: dict[str, dict[str, Any]] = {}
            self.idempotency: dict[str, tuple[str, int, dict[str, Any]]] = {}
            self.requests: list[Recorded] = []
            self.faults: deque[Fault] = deque()

    # ---- controls ------------------------------------------------------------------------------

    def now(self) -> int:
        return int(time.time())

    def fail_next(
        self,
        status: int = 500,
        *,
        times: int = 1,
        path: str | None = None,
        type: str = "api_error",
        code: str | None = None,
        message: str = "An unknown error occurred",
        headers: dict[str, str] | None = None,
    ) -> None:
        with self.lock:
            for _ in range(times):
                self.faults.append(
                    Fault(status, 0.0, path, type, code, message, dict(headers or {}))
                )

    def delay_next(self, seconds: float, *, times: int = 1, path: str | None = None) -> None:
        with self.lock:
            for _ in range(times):
                self.faults.append(Fault(None, seconds, path))

    def requests_to(self, method: str, path_prefix: str) -> list[Recorded]:
        with self.lock:
            return [
                r for r in self.requests if r.method == method and r.path.startswith(path_prefix)
            ]

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # ---- what happens at Stripe when customers act -------------------------------------------

    def complete_checkout(self, session_id: str) -> dict[str, Any]:
        """The customer pays: a payment intent and its charge, or a subscription and its first
        invoice. Returns the completed session."""
        with self.lock:
            session = self.sessions[session_id]
            extras = self.session_extras[session_id]
            now = self.now()
            intent = self._new_payment_intent(
                session["amount_total"],
                session["currency"],
                session["customer"],
                extras.get("payment_intent_metadata", {}),
                succeeded=True,
            )
            if session["mode"] == "payment":
                session["payment_intent"] = intent["id"]
            else:
                price_id = extras["price"]
                price = PRICES[price_id]
                subscription_id = new_id("sub_")
                invoice_id = new_id("in_")
                period_end = now + (30 * DAY if price["interval"] == "month" else 365 * DAY)
                self.subscriptions[subscription_id] = {
                    "id": subscription_id,
                    "object": "subscription",
                    "cancel_at": None,
                    "cancel_at_period_end": False,
                    "canceled_at": None,
                    "created": now,
                    "currency": price["currency"],
                    "customer": session["customer"],
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
                    "metadata": dict(extras.get("subscription_metadata", {})),
                    "status": "active",
                }
                self.invoices[invoice_id] = {
                    "id": invoice_id,
                    "object": "invoice",
                    "amount_due": price["unit_amount"],
                    "amount_paid": price["unit_amount"],
                    "amount_remaining": 0,
                    "billing_reason": "subscription_create",
                    "created": now,
                    "currency": price["currency"],
                    "customer": session["customer"],
                    "livemode": False,
                    "parent": {
                        "type": "subscription_details",
                        "quote_details": None,
                        "subscription_details": {
                            "metadata": dict(extras.get("subscription_metadata", {})),
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
                                    "payment_intent": intent["id"],
                                },
                                "status": "paid",
                            }
                        ],
                        "has_more": False,
                    },
                    "status": "paid",
                }
                session["subscription"] = subscription_id
                session["invoice"] = invoice_id
            session["status"] = "complete"
            session["payment_status"] = "paid"
            return copy.deepcopy(session)

    def decline_checkout_payment(self, session_id: str) -> dict[str, Any]:
        """A card is declined on the Checkout page: the payment intent that failed."""
        with self.lock:
            session = self.sessions[session_id]
            extras = self.session_extras[session_id]
            intent = self._new_payment_intent(
                session["amount_total"],
                session["currency"],
                session["customer"],
                extras.get("payment_intent_metadata", {}),
                succeeded=False,
            )
            session["payment_intent"] = intent["id"]
            return copy.deepcopy(intent)

    def expire_checkout(self, session_id: str) -> dict[str, Any]:
        with self.lock:
            session = self.sessions[session_id]
            session["status"] = "expired"
            session["url"] = None
            return copy.deepcopy(session)

    def refund_in_dashboard(self, payment_intent_id: str, amount: int) -> dict[str, Any]:
        """Someone refunds from Stripe's dashboard: the charge afterwards."""
        with self.lock:
            intent = self.payment_intents[payment_intent_id]
            self._refund(intent, amount, {}, "requested_by_customer")
            return copy.deepcopy(self.charges[intent["latest_charge"]])

    def charge_of(self, payment_intent_id: str) -> dict[str, Any]:
        with self.lock:
            intent = self.payment_intents[payment_intent_id]
            return copy.deepcopy(self.charges[intent["latest_charge"]])

    def change_subscription(self, subscription_id: str, **changes: Any) -> dict[str, Any]:
        """Stripe changes a subscription (renewal, failed payment, cancellation)."""
        with self.lock:
            subscription = self.subscriptions[subscription_id]
            subscription.update(changes)
            if changes.get("status") == "canceled":
                subscription["canceled_at"] = subscription["canceled_at"] or self.now()
                subscription["ended_at"] = self.now()
            return copy.deepcopy(subscription)

    def event(
        self, event_type: str, obj: dict[str, Any], *, created: int | None = None
    ) -> dict[str, Any]:
        """An event as Stripe delivers it, with a snapshot of the object."""
        return {
            "id": new_id("evt_"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self.now() if created is None else created,
            "data": {"object": copy.deepcopy(obj)},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": new_id("req_", 14), "idempotency_key": None},
            "type": event_type,
        }

    # ---- internals -------------------------------------------------------------------------

    def _new_payment_intent(
        self,
        amount: int,
        currency: str,
        customer: str | None,
        metadata: dict[str, Any],
        *,
        succeeded: bool,
    ) -> dict[str, Any]:
        now = self.now()
        intent_id = new_id("pi_")
        intent: dict[str, Any] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": amount if succeeded else 0,
            "created": now,
            "currency": currency,
            "customer": customer,
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": dict(metadata),
            "status": "succeeded" if succeeded else "requires_payment_method",
        }
        charge_id = new_id("ch_")
        self.charges[charge_id] = {
            "id": charge_id,
            "object": "charge",
            "amount": amount,
            "amount_captured": amount if succeeded else 0,
            "amount_refunded": 0,
            "captured": succeeded,
            "created": now,
            "currency": currency,
            "customer": customer,
            "livemode": False,
            "metadata": dict(metadata),
            "paid": succeeded,
            "payment_intent": intent_id,
            "refunded": False,
            "refunds": {"object": "list", "data": [], "has_more": False},
            "status": "succeeded" if succeeded else "failed",
        }
        intent["latest_charge"] = charge_id
        if not succeeded:
            intent["last_payment_error"] = {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": "generic_decline",
                "message": "Your card was declined.",
                "charge": charge_id,
            }
        self.payment_intents[intent_id] = intent
        return intent

    def _refund(
        self, intent: dict[str, Any], amount: int | None, metadata: dict[str, Any], reason: str
    ) -> dict[str, Any]:
        charge = self.charges[intent["latest_charge"]]
        if charge["status"] != "succeeded":
            raise StripeFailure(
                400,
                f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund.",
                code="charge_not_refundable",
            )
        remaining = charge["amount"] - charge["amount_refunded"]
        if remaining <= 0:
            raise StripeFailure(
                400,
                f"Charge {charge['id']} has already been refunded.",
                code="charge_already_refunded",
            )
        amount = remaining if amount is None else amount
        if amount <= 0:
            raise StripeFailure(
                400, "Invalid positive integer", code="parameter_invalid_integer", param="amount"
            )
        if amount > remaining:
            raise StripeFailure(
                400,
                f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                f"({remaining})",
                code="amount_too_large",
                param="amount",
            )
        refund_id = new_id("re_")
        refund = {
            "id": refund_id,
            "object": "refund",
            "amount": amount,
            "charge": charge["id"],
            "created": self.now(),
            "currency": charge["currency"],
            "metadata": dict(metadata),
            "payment_intent": intent["id"],
            "reason": reason,
            "status": "succeeded",
        }
        self.refunds[refund_id] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        charge["refunds"]["data"].insert(0, copy.deepcopy(refund))
        return refund

    def _list(self, items: list[dict[str, Any]], path: str, limit: int) -> dict[str, Any]:
        return {
            "object": "list",
            "data": copy.deepcopy(items[:limit]),
            "has_more": len(items) > limit,
            "url": path,
        }

    def _limit(self, params: dict[str, Any]) -> int:
        try:
            limit = int(params.get("limit", 10))
        except ValueError:
            raise StripeFailure(
                400, "Invalid integer: limit", code="parameter_invalid_integer", param="limit"
            ) from None
        if not 1 <= limit <= 100:
            raise StripeFailure(400, "limit must be between 1 and 100", param="limit")
        return limit

    # ---- endpoints -------------------------------------------------------------------------

    def route(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        if parts[:1] != ["v1"]:
            raise StripeFailure(404, f"Unrecognized request URL ({method}: {path}).")
        resource = parts[1:]
        if resource == ["customers"] and method == "POST":
            return 200, self._create_customer(params)
        if len(resource) == 2 and resource[0] == "customers" and method == "GET":
            customer = self.customers.get(resource[1]) or self._raise_missing(
                "customer", resource[1]
            )
            return 200, copy.deepcopy(customer)
        if resource == ["checkout", "sessions"] and method == "POST":
            return 200, self._create_session(params)
        if resource == ["checkout", "sessions"] and method == "GET":
            sessions = sorted(
                self.sessions.values(),
                key=lambda s: self.session_extras[s["id"]]["seq"],
                reverse=True,
            )
            if "customer" in params:
                sessions = [s for s in sessions if s["customer"] == params["customer"]]
            if "status" in params:
                sessions = [s for s in sessions if s["status"] == params["status"]]
            return 200, self._list(sessions, "/v1/checkout/sessions", self._limit(params))
        if len(resource) == 3 and resource[:2] == ["checkout", "sessions"] and method == "GET":
            session = self.sessions.get(resource[2]) or self._raise_missing(
                "checkout.session", resource[2]
            )
            return 200, copy.deepcopy(session)
        if resource == ["refunds"] and method == "POST":
            return 200, self._create_refund(params)
        if len(resource) == 2 and resource[0] == "subscriptions":
            subscription = self.subscriptions.get(resource[1]) or self._raise_missing(
                "subscription", resource[1]
            )
            if method == "POST":
                self._update_subscription(subscription, params)
            return 200, copy.deepcopy(subscription)
        raise StripeFailure(404, f"Unrecognized request URL ({method}: {path}).")

    def _raise_missing(self, kind: str, object_id: str) -> dict[str, Any]:
        raise _missing(kind, object_id, "id")

    def _create_customer(self, params: dict[str, Any]) -> dict[str, Any]:
        customer_id = new_id("cus_", 14)
        customer = {
            "id": customer_id,
            "object": "customer",
            "created": self.now(),
            "email": params.get("email"),
            "name": params.get("name"),
            "livemode": False,
            "metadata": dict(params.get("metadata") or {}),
        }
        self.customers[customer_id] = customer
        return copy.deepcopy(customer)

    def _create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        mode = params.get("mode")
        if mode is None:
            raise StripeFailure(
                400, "Missing required param: mode.", code="parameter_missing", param="mode"
            )
        if mode not in ("payment", "subscription", "setup"):
            raise StripeFailure(
                400,
                "Invalid mode: must be one of payment, setup, or subscription",
                code="parameter_invalid_string",
                param="mode",
            )
        if not params.get("success_url"):
            raise StripeFailure(
                400,
                "Missing required param: success_url.",
                code="parameter_missing",
                param="success_url",
            )
        customer = params.get("customer")
        if customer is not None and customer not in self.customers:
            raise _missing("customer", customer, "customer", status=400)
        items = params.get("line_items")
        if not isinstance(items, list) or not items:
            raise StripeFailure(
                400,
                "Missing required param: line_items.",
                code="parameter_missing",
                param="line_items",
            )
        amount_total, currency, price_id = 0, None, None
        for index, item in enumerate(items):
            quantity = int(item.get("quantity", 1))
            if "price" in item:
                price_id = item["price"]
                price = PRICES.get(price_id)
                if price is None:
                    raise _missing("price", price_id, f"line_items[{index}][price]", status=400)
                if mode == "payment":
                    raise StripeFailure(
                        400,
                        "You specified `payment` mode but passed a recurring price. Either "
                        "switch to `subscription` mode or use only one-time prices.",
                        param=f"line_items[{index}][price]",
                    )
                amount_total += price["unit_amount"] * quantity
                currency = price["currency"]
            elif "price_data" in item:
                data = item["price_data"]
                for name in ("currency", "unit_amount"):
                    if name not in data:
                        raise StripeFailure(
                            400,
                            f"Missing required param: line_items[{index}][price_data][{name}].",
                            code="parameter_missing",
                            param=f"line_items[{index}][price_data][{name}]",
                        )
                if not (data.get("product_data") or {}).get("name") and "product" not in data:
                    raise StripeFailure(
                        400,
                        f"Missing required param: line_items[{index}][price_data][product_data]"
                        "[name].",
                        code="parameter_missing",
                    )
                if mode == "subscription" and "recurring" not in data:
                    raise StripeFailure(
                        400,
                        "You must provide at least one recurring price in `subscription` "
                        "mode when using prices.",
                        param=f"line_items[{index}][price_data]",
                    )
                amount_total += int(data["unit_amount"]) * quantity
                currency = data["currency"]
            else:
                raise StripeFailure(
                    400, "Each line item needs a price or price_data.", param=f"line_items[{index}]"
                )
        now = self.now()
        session_id = new_id("cs_test_a1", 56)
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": amount_total,
            "amount_total": amount_total,
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "created": now,
            "currency": currency,
            "customer": customer,
            "expires_at": int(params.get("expires_at") or now + DAY),
            "invoice": None,
            "livemode": False,
            "metadata": dict(params.get("metadata") or {}),
            "mode": mode,
            "payment_intent": None,
            "payment_status": "unpaid",
            "status": "open",
            "subscription": None,
            "success_url": params["success_url"],
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
        }
        self.sessions[session_id] = session
        self.session_extras[session_id] = {
            "seq": len(self.session_extras),
            "line_items": items,
            "price": price_id,
            "payment_intent_metadata": (params.get("payment_intent_data") or {}).get(
                "metadata", {}
            ),
            "subscription_metadata": (params.get("subscription_data") or {}).get("metadata", {}),
        }
        return copy.deepcopy(session)

    def _create_refund(self, params: dict[str, Any]) -> dict[str, Any]:
        intent_id = params.get("payment_intent")
        if not intent_id:
            raise StripeFailure(
                400,
                "One of the following params should be provided for this "
                "request: payment_intent or charge.",
                code="parameter_missing",
            )
        intent = self.payment_intents.get(intent_id)
        if intent is None:
            raise _missing("payment_intent", intent_id, "payment_intent", status=400)
        reason = params.get("reason")
        if reason is not None and reason not in REFUND_REASONS:
            raise StripeFailure(
                400, f"Invalid reason: {reason}", code="parameter_invalid_string", param="reason"
            )
        amount = params.get("amount")
        return copy.deepcopy(
            self._refund(
                intent,
                int(amount) if amount is not None else None,
                dict(params.get("metadata") or {}),
                reason or "requested_by_customer",
            )
        )

    def _update_subscription(self, subscription: dict[str, Any], params: dict[str, Any]) -> None:
        if subscription["status"] == "canceled" and set(params) - {"metadata"}:
            raise StripeFailure(
                400,
                "A canceled subscription can only update its cancellation_details and metadata.",
            )
        if "cancel_at_period_end" in params:
            value = params["cancel_at_period_end"]
            if value not in ("true", "false"):
                raise StripeFailure(
                    400,
                    "Invalid boolean: " + value,
                    code="parameter_invalid_boolean",
                    param="cancel_at_period_end",
                )
            subscription["cancel_at_period_end"] = value == "true"
            period_end = subscription["items"]["data"][0]["current_period_end"]
            subscription["cancel_at"] = period_end if value == "true" else None
        if "metadata" in params:
            subscription["metadata"].update(params["metadata"])

    # ---- HTTP --------------------------------------------------------------------------------

    def _take_fault(self, path: str) -> Fault | None:
        for index, fault in enumerate(self.faults):
            if fault.path is None or path.startswith(fault.path):
                del self.faults[index]
                return fault
        return None

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        url = urlsplit(raw_path)
        params = parse_form(body.decode() if method == "POST" else url.query)
        key = headers.get("idempotency-key")
        record = Recorded(method, url.path, params, key, headers)
        with self.lock:
            self.requests.append(record)
            fault = self._take_fault(url.path)
        if fault is not None and fault.status is not None:
            failure = StripeFailure(
                fault.status,
                fault.message,
                type=fault.type,
                code=fault.code,
                headers=fault.headers,
            )
            record.status = fault.status
            return fault.status, failure.headers, failure.body
        answer = self._answer(method, url.path, params, key, headers, record)
        if fault is not None and fault.delay:
            # The work is done; only the answer is late (the client may have given up).
            time.sleep(fault.delay)
        return answer

    def _answer(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        key: str | None,
        headers: dict[str, str],
        record: Recorded,
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        response_headers = {"Request-Id": new_id("req_", 14), "Stripe-Version": API_VERSION}
        if headers.get("authorization") != f"Bearer {self.api_key}":
            record.status = 401
            return (
                401,
                response_headers,
                StripeFailure(
                    401, "Invalid API Key provided: " + headers.get("authorization", "")[-4:]
                ).body,
            )
        with self.lock:
            fingerprint = json.dumps([method, path, params], sort_keys=True)
            if method == "POST" and key:
                stored = self.idempotency.get(key)
                if stored is not None:
                    if stored[0] != fingerprint:
                        record.status = 400
                        return (
                            400,
                            response_headers,
                            StripeFailure(
                                400,
                                "Keys for idempotent requests can only be used with the same "
                                "parameters they were first used with. Try using a key other than "
                                f"'{key}' if you meant to execute a different request.",
                                type="idempotency_error",
                            ).body,
                        )
                    record.status, record.replayed = stored[1], True
                    return (
                        stored[1],
                        {**response_headers, "Idempotent-Replayed": "true"},
                        copy.deepcopy(stored[2]),
                    )
            try:
                status, result = self.route(method, path, params)
            except StripeFailure as failure:
                status, result = failure.status, failure.body
                response_headers.update(failure.headers)
            if method == "POST" and key and status < 400:
                self.idempotency[key] = (fingerprint, status, copy.deepcopy(result))
            record.status = status
            return status, response_headers, result

    @contextmanager
    def running(self) -> Iterator[FakeStripe]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, extra, payload = fake.handle(method, self.path, headers, body)
                encoded = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(encoded)))
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(encoded)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up waiting

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        thread = threading.Thread(target=server.serve_forever, name="fake-stripe", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
            self._server = None
