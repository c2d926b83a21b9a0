"""The generator worker relays the outbox when notifications go through AWS, and only then: a
real job's draft-ready email reaches the SES emulator without anyone calling the relay."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_domain.config import Settings
from momentum_domain.notifications.models import OutboxMessage, OutboxStatus
from momentum_domain.notifications.relay import RelayReport
from momentum_domain.users.models import User
from momentum_generator.worker import build, start_worker, stop_worker
from tests.fixtures.app import Account, AppClient
from tests.fixtures.generation import queue, wait_for_job
from tests.fixtures.notifications import Aws, notify


async def wait_for_emails(aws: Aws, *, within: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if emails := aws.emails():
            return emails
        await asyncio.sleep(0.2)
    raise AssertionError(f"no email reached SES in {within}s")


async def test_the_worker_sends_the_draft_ready_email_through_ses_and_sns(
    aws_settings: Settings,
    aws: Aws,
    client: AppClient,
    admin_account: Account,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    aws.verify_sender()
    started = start_worker(aws_settings, threads=8)
    try:
        queued = await queue(client, admin_account, "Knots for sailors", 7)
        job = await wait_for_job(client, admin_account, queued["id"])
        assert job["status"] == "SUCCEEDED", job["error"]
        [email] = await wait_for_emails(aws)
    finally:
        await asyncio.to_thread(stop_worker, *started)

    assert email["destinations"]["ToAddresses"] == [admin_account.user.email]
    assert email["subject"] == "Your course draft is ready for review"
    assert job["review_url"] in email["body"]
    [post] = aws.topic_messages()
    assert job["review_url"] in post["Message"]
    async with sessions() as session:
        rows = list(await session.scalars(select(OutboxMessage)))
    assert {(r.channel, r.status, r.attempts) for r in rows} == {
        ("email", OutboxStatus.SENT, 1),
        ("sns", OutboxStatus.SENT, 1),
    }


async def test_with_the_outbox_backend_messages_stay_pending(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], admin_user: User
) -> None:
    assert settings.notify_backend == "outbox"
    broker, generator = build(settings)
    try:
        assert not generator.relays_notifications
        await notify(sessions, admin_user, "kept")
        assert await generator.relay_notifications() == RelayReport()
    finally:
        broker.close()
    async with sessions() as session:
        rows = list(await session.scalars(select(OutboxMessage)))
    assert {(r.status, r.attempts) for r in rows} == {(OutboxStatus.PENDING, 0)}


def test_a_worker_sending_through_aws_needs_the_sender_and_the_topic(
    aws_settings: Settings,
) -> None:
    broker, generator = build(aws_settings)
    broker.close()
    assert generator.relays_notifications
    for missing, variable in (
        ("ses_sender", "MOMENTUM_SES_SENDER"),
        ("sns_topic_arn", "MOMENTUM_SNS_TOPIC_ARN"),
    ):
        with pytest.raises(ValueError, match=variable):
            build(aws_settings.model_copy(update={missing: ""}))
