"""HeyGen's webhook deliveries: the signature over the raw body, and the event it carries."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from typing import Any

from momentum_domain.errors import BadRequest

# HeyGen signs the raw body with the endpoint's secret: hex HMAC-SHA256 in the ``Signature``
# header (some integrations document it as ``X-HeyGen-Signature``; both are accepted).
SIGNATURE_HEADERS = ("signature", "x-heygen-signature")
# Events that end a render; anything else is acknowledged and ignored.
VIDEO_DONE_EVENTS = ("avatar_video.success", "avatar_video.fail")


@dataclass(frozen=True)
class WebhookEvent:
    event_id: str
    event_type: str
    video_id: str | None
    callback_id: str | None
    payload: dict[str, Any]

    @property
    def video_request_id(self) -> uuid.UUID | None:
        """Our video request's id, which we send HeyGen as the render's callback id."""
        try:
            return uuid.UUID(self.callback_id) if self.callback_id else None
        except ValueError:
            return None


def signature_matches(secret: str, body: bytes, signature: str | None) -> bool:
    if not secret or not signature:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    given = signature.strip().lower().encode("utf-8", "surrogatepass")
    return hmac.compare_digest(expected.encode(), given)


def parse_event(body: bytes) -> WebhookEvent:
    """``{"event_id", "event_type", "event_data": {"video_id", "callback_id", ...}}``. An event
    without an id is identified by its bytes, so a redelivery is still recognised."""
    try:
        payload = json.loads(body)
    except ValueError:
        raise BadRequest("The webhook body is not JSON.") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("event_type"), str):
        raise BadRequest("The webhook body has no event_type.")
    data = payload.get("event_data")
    data = data if isinstance(data, dict) else {}
    event_id = payload.get("event_id")
    return WebhookEvent(
        event_id=str(event_id) if event_id else hashlib.sha256(body).hexdigest(),
        event_type=payload["event_type"],
        video_id=_text(data.get("video_id")),
        callback_id=_text(data.get("callback_id")),
        payload=payload,
    )


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int) and str(value) else None
