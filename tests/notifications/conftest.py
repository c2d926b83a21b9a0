"""SES and SNS emulated by the session's moto server (tests/fixtures/moto.py), spoken to over
real HTTP. Each test gets its own sender domain (unverified until the test verifies it), topic
and queue, so what a test reads back is only what it sent. The server is never reset: other
suites in the process keep state in it (the media bucket).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_domain.config import Settings
from momentum_domain.notifications.relay import OutboxRelay
from momentum_domain.notifications.service import create_sender
from momentum_domain.users.models import Role, User
from tests.fixtures.moto import REGION
from tests.fixtures.notifications import Aws, MakeRelay


@pytest.fixture
def aws(moto_endpoint: str) -> Aws:
    tag = uuid.uuid4().hex[:12]
    ses_sns = Aws(moto_endpoint, f"noreply@{tag}.momentum.test", "", "")
    sns, sqs = ses_sns.client("sns"), ses_sns.client("sqs")
    ses_sns.topic_arn = sns.create_topic(Name=f"operators-{tag}")["TopicArn"]
    ses_sns.queue_url = sqs.create_queue(QueueName=f"operators-inbox-{tag}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=ses_sns.queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(TopicArn=ses_sns.topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return ses_sns


@pytest.fixture
def aws_settings(settings: Settings, aws: Aws) -> Settings:
    """Notifications through AWS, as every deployed stack sets them, pointed at the emulator."""
    return settings.model_copy(
        update={
            "notify_backend": "aws",
            "ses_sender": aws.sender,
            "sns_topic_arn": aws.topic_arn,
            "aws_endpoint_url": aws.endpoint,
            "aws_region": REGION,
        }
    )


@pytest.fixture
def make_relay(aws_settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> MakeRelay:
    """A relay with the production sender; settings may be overridden (batch, attempts)."""

    def make(**overrides: Any) -> OutboxRelay:
        relay_settings = aws_settings.model_copy(update=overrides)
        sender = create_sender(relay_settings)
        assert sender is not None
        return OutboxRelay(sessions, sender, relay_settings)

    return make


@pytest.fixture
async def admin_user(db: AsyncSession) -> User:
    tag = uuid.uuid4().hex[:8]
    user = User(
        email=f"admin-{tag}@example.com",
        name="Ada Admin",
        role=Role.ADMIN,
        identity_provider="local",
        subject=f"admin-{tag}",
    )
    db.add(user)
    await db.commit()
    return user
