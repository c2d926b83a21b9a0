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
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from momentum_dev.fakes.stripe_api import StripeApi
from momentum_dev.fakes.stripe_wire import (
    API_KEY,
    API_VERSION,
    StripeFailure,
    invoice_object,
    new_id,
    parse_form,
    subscription_object,
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


class FakeStripe(StripeApi):
    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self._server: ThreadingHTTPServer | None = None
        super().__init__()

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self.requests: list[Recorded] = []
            self.faults: deque[Fault] = deque()

    # ---- controls ------------------------------------------------------------------------------

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
                subscription_id = new_id("sub_")
                invoice_id = new_id("in_")
                metadata = extras.get("subscription_metadata", {})
                self.subscriptions[subscription_id] = subscription_object(
                    subscription_id, price_id, session["customer"], invoice_id, metadata, now
                )
                self.invoices[invoice_id] = invoice_object(
                    invoice_id,
                    price_id,
                    session["customer"],
                    subscription_id,
                    intent["id"],
                    metadata,
                    now,
                )
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
