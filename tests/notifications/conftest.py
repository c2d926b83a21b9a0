"""SES and SNS emulated by moto's server mode, spoken to over real HTTP.

One server for the session; each test gets its own sender domain (unverified until the test
verifies it), topic and queue, so what a test reads back is only what it sent. The server is
never reset: other suites in the process keep state in it (the media bucket).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.server import ThreadedMotoServer
from moto.ses.models import ses_backends
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_domain.config import Settings
from momentum_domain.notifications.relay import OutboxRelay
from momentum_domain.notifications.service import create_sender
from momentum_domain.users.models import Role, User
from tests.api.conftest import (  # noqa: F401 - fixtures
    admin_account,
    app,
    client,
    make_account,
)

REGION = "us-east-1"
MakeRelay = Callable[..., OutboxRelay]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per emulated call
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@dataclass
class Aws:
    """One test's corner of the emulator, read back the way an operator would."""

    endpoint: str
    sender: str
    topic_arn: str
    queue_url: str

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION)

    def verify_sender(self) -> None:
        self.client("ses").verify_domain_identity(Domain=self.sender.split("@")[1])

    def emails(self) -> list[dict[str, Any]]:
        """Every email SES accepted from this test's sender. Read from moto's SES backend as its
        documentation shows: /moto-api/data.json serialises every service's state and fails
        when another suite's S3 objects outlive their bucket."""
        backend = ses_backends[DEFAULT_ACCOUNT_ID][REGION]
        return [
            {
                "source": m.source,
                "destinations": m.destinations,
                "subject": m.subject,
                "body": m.body,
            }
            for m in backend.sent_messages
            if m.source == self.sender
        ]

    def topic_messages(self) -> list[dict[str, Any]]:
        """Every notification the topic delivered to its subscribed queue so far."""
        sqs, received = self.client("sqs"), []
        while True:
            batch = sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not batch:
                return received
            for message in batch:
                received.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


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
