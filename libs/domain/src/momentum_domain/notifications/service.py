"""Notifications through an outbox: a message is a row written in the same transaction as the
change it reports. In production the relay (momentum_domain.notifications.relay, run by the
generator worker) sends pending rows through SES (email) and SNS (the operators' topic); in the
embedded setup they stay readable through the admin API."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.config import Settings
from momentum_domain.kit.pagination import PageRequest, fetch_page
from momentum_domain.notifications.models import OutboxMessage

logger = logging.getLogger(__name__)

# Errors no retry can cure: the message itself is wrong (a malformed address, say). An
# unverified sender (MessageRejected) is not among them: it is fixed by verifying the identity.
PERMANENT_ERROR_CODES = frozenset({"InvalidParameterValue", "InvalidParameter"})


class PermanentFailure(Exception):
    """A message that can never be delivered as written: marked FAILED without retries."""


@dataclass(frozen=True)
class Envelope:
    """What a sender needs of an outbox row, read when the relay claims it."""

    id: uuid.UUID
    channel: str
    recipient: str
    subject: str
    body: str


class Sender(Protocol):
    def send(self, message: Envelope) -> str:
        """Deliver one message (blocking) and return the provider's message id; raise
        PermanentFailure when retrying cannot help, anything else to be retried."""
        ...


class AwsSender:
    """SES for email, SNS for the operators' topic; boto3 clients built once. IAM needs
    ``ses:SendEmail`` on the sender identity and ``sns:Publish`` on the topic."""

    def __init__(self, settings: Settings) -> None:
        if not settings.ses_sender:
            raise ValueError("MOMENTUM_NOTIFY_BACKEND=aws needs MOMENTUM_SES_SENDER")
        if not settings.sns_topic_arn:
            raise ValueError("MOMENTUM_NOTIFY_BACKEND=aws needs MOMENTUM_SNS_TOPIC_ARN")
        self._sender = settings.ses_sender
        self._topic = settings.sns_topic_arn
        # Bounded: a send holds the relay's lease on its message (see relay.py), so it must end
        # well within it. The relay retries failures itself, with a longer backoff.
        config = Config(
            connect_timeout=5,
            read_timeout=10,
            retries={"total_max_attempts": 2, "mode": "standard"},
        )
        region, endpoint = settings.aws_region, settings.aws_endpoint_url
        self._ses = boto3.client("ses", region_name=region, endpoint_url=endpoint, config=config)
        self._sns = boto3.client("sns", region_name=region, endpoint_url=endpoint, config=config)

    def send(self, message: Envelope) -> str:
        try:
            if message.channel == "email":
                if not message.recipient:
                    raise PermanentFailure("the email has no recipient address")
                response = self._ses.send_email(
                    Source=self._sender,
                    Destination={"ToAddresses": [message.recipient]},
                    Message={
                        "Subject": {"Data": message.subject, "Charset": "UTF-8"},
                        "Body": {"Text": {"Data": message.body, "Charset": "UTF-8"}},
                    },
                )
            else:
                # SNS subjects: at most 100 characters, on one line.
                subject = " ".join(message.subject.split())[:100]
                response = self._sns.publish(
                    TopicArn=self._topic, Subject=subject, Message=message.body
                )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in PERMANENT_ERROR_CODES:
                raise PermanentFailure(str(exc)) from exc
            raise
        return str(response["MessageId"])


def create_sender(settings: Settings) -> Sender | None:
    """The sender for ``MOMENTUM_NOTIFY_BACKEND``, or None for "outbox": nothing is relayed and
    the messages stay PENDING, readable through the admin API. The only reader of the setting."""
    if settings.notify_backend == "aws":
        return AwsSender(settings)
    return None


@dataclass(frozen=True, slots=True)
class Recipient:
    user_id: uuid.UUID
    email: str


class NotificationService:
    def email(
        self, session: AsyncSession, recipient: Recipient, *, subject: str, body: str, kind: str
    ) -> None:
        """Queue an email to a user, sent once this transaction commits."""
        session.add(
            OutboxMessage(
                recipient_id=recipient.user_id,
                channel="email",
                recipient=recipient.email,
                subject=subject,
                body=body,
                payload={"kind": kind},
            )
        )

    async def emailed_within(
        self, session: AsyncSession, user_id: uuid.UUID, kind: str, period: timedelta
    ) -> bool:
        """Whether the user was sent an email of this kind in the last ``period``."""
        sent = await session.scalar(
            select(OutboxMessage.id).where(
                OutboxMessage.recipient_id == user_id,
                OutboxMessage.payload["kind"].astext == kind,
                OutboxMessage.created_at > func.now() - period,
            )
        )
        return sent is not None

    async def notify_admin(
        self,
        session: AsyncSession,
        *,
        recipient: Recipient | None,
        subject: str,
        body: str,
        payload: dict[str, Any],
        dedupe_key: str,
    ) -> uuid.UUID:
        """Queue an email to the admin and a post to the operators' topic, once per key."""
        existing = await session.scalar(
            select(OutboxMessage.id).where(OutboxMessage.payload["dedupe_key"].astext == dedupe_key)
        )
        if existing is not None:
            return existing
        payload = {**payload, "dedupe_key": dedupe_key}
        email = OutboxMessage(
            recipient_id=recipient.user_id if recipient else None,
            channel="email",
            recipient=recipient.email if recipient else "",
            subject=subject,
            body=body,
            payload=payload,
        )
        topic = OutboxMessage(
            recipient_id=None,
            channel="sns",
            recipient="operators",
            subject=subject,
            body=body,
            payload={**payload, "dedupe_key": dedupe_key + ":sns"},
        )
        session.add_all([email, topic])
        await session.flush()
        return email.id

    async def list_messages(self, session: AsyncSession, page: PageRequest) -> list[OutboxMessage]:
        """The outbox, newest first."""
        order = (OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
        return await fetch_page(session, select(OutboxMessage), page, order)


notifications = NotificationService()
