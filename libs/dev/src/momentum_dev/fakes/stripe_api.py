"""The objects the fake Stripe keeps (customers, Checkout sessions, payment intents and their
charges, refunds, subscriptions, invoices) and the v1 endpoints payments call on them."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

from momentum_dev.fakes.stripe_wire import (
    DAY,
    PRICES,
    REFUND_REASONS,
    StripeFailure,
    missing,
    new_id,
)


class StripeApi:
    def __init__(self) -> None:
        self.lock = threading.RLock()
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

    def now(self) -> int:
        return int(time.time())

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
            customer = self.customers.get(resource[1]) or self._raisemissing(
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
            session = self.sessions.get(resource[2]) or self._raisemissing(
                "checkout.session", resource[2]
            )
            return 200, copy.deepcopy(session)
        if resource == ["refunds"] and method == "POST":
            return 200, self._create_refund(params)
        if len(resource) == 2 and resource[0] == "subscriptions":
            subscription = self.subscriptions.get(resource[1]) or self._raisemissing(
                "subscription", resource[1]
            )
            if method == "POST":
                self._update_subscription(subscription, params)
            return 200, copy.deepcopy(subscription)
        raise StripeFailure(404, f"Unrecognized request URL ({method}: {path}).")

    def _raisemissing(self, kind: str, object_id: str) -> dict[str, Any]:
        raise missing(kind, object_id, "id")

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
            raise missing("customer", customer, "customer", status=400)
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
                    raise missing("price", price_id, f"line_items[{index}][price]", status=400)
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
            raise missing("payment_intent", intent_id, "payment_intent", status=400)
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
