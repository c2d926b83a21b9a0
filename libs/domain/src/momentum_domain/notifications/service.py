"""Notifications through an outbox: a message is a row written in the same transaction as the
change it reports. In production a relay sends pending rows through SES (email) and SNS (the
operators' topic); in the embedded setup they stay readable through the admin API."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.config import Settings
from momentum_domain.notifications.models import OutboxMessage, OutboxStatus
from momentum_domain.users.models import User

logger = logging.getLogger(__name__)


class Sender(Protocol):
    def send(self, message: OutboxMessage) -> None: ...


class AwsSender:
    """SES for email, SNS for the topic; boto3 clients built once."""

    def __init__(self, settings: Settings) -> None:
        import boto3

        self._sender = settings.ses_sender
        self._topic = settings.sns_topic_arn
        self._ses = boto3.client("ses", region_name=settings.aws_region)
        self._sns = boto3.client("sns", region_name=settings.aws_region)

    def send(self, message: OutboxMessage) -> None:
        if message.channel == "email":
            self._ses.send_email(
                Source=self._sender,
                Destination={"ToAddresses": [message.recipient]},
                Message={
                    "Subject": {"Data": message.subject},
                    "Body": {"Text": {"Data": message.body}},
                },
            )
        else:
            self._sns.publish(
                TopicArn=self._topic, Subject=message.subject[:100], Message=message.body
            )


class NotificationService:
    async def notify_admin(
        self,
        session: AsyncSession,
        *,
        user_id: uuid.UUID | None,
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
        user = await session.get(User, user_id) if user_id else None
        payload = {**payload, "dedupe_key": dedupe_key}
        email = OutboxMessage(
            recipient_id=user_id,
            channel="email",
            recipient=user.email if user else "",
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

    async def list_messages(
        self, session: AsyncSession, *, limit: int, offset: int
    ) -> list[OutboxMessage]:
        return list(
            await session.scalars(
                select(OutboxMessage)
                .order_by(OutboxMessage.created_at.desc())
                .limit(limit)
                .offset(offset)
            )
        )

    async def relay(self, session: AsyncSession, sender: Sender, *, batch: int = 50) -> int:
        """Send pending messages; each is marked SENT or FAILED. Concurrent relays skip each
        other's rows."""
        pending = list(
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.status == OutboxStatus.PENDING)
                .order_by(OutboxMessage.created_at)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        )
        for message in pending:
            try:
                await asyncio.to_thread(sender.send, message)
                message.status = OutboxStatus.SENT
                message.sent_at = datetime.now(UTC)
            except Exception as exc:
                logger.warning("outbox message %s not sent: %s", message.id, exc)
                message.status = OutboxStatus.FAILED
        await session.flush()
        return len(pending)


notifications = NotificationService()
