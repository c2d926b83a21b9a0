"""The outbox relay against SES and SNS emulated over HTTP (moto's server mode) and the real
PostgreSQL: delivery, a failure and its retry, giving up, and concurrent relays."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from momentum_domain.notifications.models import OutboxMessage, OutboxStatus
from momentum_domain.notifications.relay import OutboxRelay, RelayReport, backoff_seconds
from momentum_domain.users.models import User
from tests.fixtures.notifications import SUBJECT, Aws, MakeRelay, Sessions, notify


async def outbox(sessions: Sessions) -> list[OutboxMessage]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(OutboxMessage).order_by(OutboxMessage.created_at, OutboxMessage.channel)
            )
        )


async def make_due(sessions: Sessions) -> None:
    """What time does to a backoff or a lease: every pending message is due now."""
    async with sessions() as session, session.begin():
        await session.execute(
            update(OutboxMessage).values(next_attempt_at=func.now() - timedelta(seconds=1))
        )


async def database_now(sessions: Sessions) -> datetime:
    async with sessions() as session:
        now = await session.scalar(select(func.now()))
    assert now is not None
    return now


async def test_the_draft_ready_message_reaches_ses_and_the_topic(
    make_relay: MakeRelay, sessions: Sessions, aws: Aws, admin_user: User
) -> None:
    aws.verify_sender()
    await notify(sessions, admin_user, "c1")
    relay = make_relay()

    assert await relay.run_once() == RelayReport(sent=2)

    [email] = aws.emails()
    assert email["destinations"]["ToAddresses"] == [admin_user.email]
    assert email["subject"] == SUBJECT
    assert "http://momentum.test/admin/courses/c1" in email["body"]
    [post] = aws.topic_messages()
    assert (post["TopicArn"], post["Subject"]) == (aws.topic_arn, SUBJECT)
    assert "admin/courses/c1" in post["Message"]
    rows = await outbox(sessions)
    assert [(r.status, r.attempts, r.last_error) for r in rows] == [
        (OutboxStatus.SENT, 1, None),
        (OutboxStatus.SENT, 1, None),
    ]
    assert all(r.sent_at is not None for r in rows)

    # Sent is final: another pass, even once everything is due, sends nothing again.
    await make_due(sessions)
    assert await relay.run_once() == RelayReport()
    assert len(aws.emails()) == 1
    assert aws.topic_messages() == []


async def test_a_rejected_email_is_retried_after_a_backoff_and_sent_once(
    make_relay: MakeRelay, sessions: Sessions, aws: Aws, admin_user: User
) -> None:
    await notify(sessions, admin_user, "c2")
    relay = make_relay(notify_retry_base_seconds=60)

    # The sender identity is not verified yet: SES rejects the email, SNS takes the post.
    assert await relay.run_once() == RelayReport(sent=1, retrying=1)
    assert aws.emails() == []
    assert len(aws.topic_messages()) == 1
    email = next(r for r in await outbox(sessions) if r.channel == "email")
    assert (email.status, email.attempts) == (OutboxStatus.PENDING, 1)
    assert "MessageRejected" in (email.last_error or "")
    delay = (email.next_attempt_at - await database_now(sessions)).total_seconds()
    assert 25 < delay <= 60  # between half and all of the base, less the test's own time

    # Not due yet: a pass now leaves it alone.
    assert await relay.run_once() == RelayReport()

    aws.verify_sender()
    await make_due(sessions)
    assert await relay.run_once() == RelayReport(sent=1)
    [received] = aws.emails()
    assert received["destinations"]["ToAddresses"] == [admin_user.email]
    email = next(r for r in await outbox(sessions) if r.channel == "email")
    assert (email.status, email.attempts, email.last_error) == (OutboxStatus.SENT, 2, None)
    await make_due(sessions)
    assert await relay.run_once() == RelayReport()
    assert len(aws.emails()) == 1
    assert aws.topic_messages() == []  # the post went once, on the first pass


async def test_after_the_last_attempt_the_message_fails_and_is_logged_once(
    make_relay: MakeRelay,
    sessions: Sessions,
    aws: Aws,
    admin_user: User,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await notify(sessions, admin_user, "c3")
    relay = make_relay(notify_max_attempts=2)
    caplog.set_level(logging.WARNING, logger="momentum_domain.notifications.relay")

    assert await relay.run_once() == RelayReport(sent=1, retrying=1)
    await make_due(sessions)
    assert await relay.run_once() == RelayReport(failed=1)
    await make_due(sessions)
    assert await relay.run_once() == RelayReport()

    email = next(r for r in await outbox(sessions) if r.channel == "email")
    assert (email.status, email.attempts, email.sent_at) == (OutboxStatus.FAILED, 2, None)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert str(email.id) in errors[0].getMessage()
    assert aws.emails() == []


async def test_an_email_without_an_address_fails_at_once(
    make_relay: MakeRelay, sessions: Sessions, aws: Aws
) -> None:
    aws.verify_sender()
    await notify(sessions, None, "c4")  # the requesting admin no longer exists

    assert await make_relay().run_once() == RelayReport(sent=1, failed=1)
    email = next(r for r in await outbox(sessions) if r.channel == "email")
    assert (email.status, email.attempts) == (OutboxStatus.FAILED, 1)
    assert "no recipient" in (email.last_error or "")


async def test_two_relays_at_once_send_each_message_exactly_once(
    make_relay: MakeRelay, sessions: Sessions, aws: Aws, admin_user: User
) -> None:
    aws.verify_sender()
    for n in range(12):
        await notify(sessions, admin_user, f"many-{n}", subject=f"Draft {n} is ready")
    # Small batches, so the two relays' claims interleave many times over.
    first, second = make_relay(notify_relay_batch=3), make_relay(notify_relay_batch=3)

    async def drain(relay: OutboxRelay) -> int:
        sent = 0
        while (report := await relay.run_once()).claimed:
            sent += report.sent
        return sent

    by_first, by_second = await asyncio.gather(drain(first), drain(second))

    assert by_first + by_second == 24
    subjects = sorted(m["subject"] for m in aws.emails())
    assert subjects == sorted(f"Draft {n} is ready" for n in range(12))
    assert sorted(m["Subject"] for m in aws.topic_messages()) == subjects
    rows = await outbox(sessions)
    # One claim each: no message was ever picked up by both relays.
    assert {(r.status, r.attempts) for r in rows} == {(OutboxStatus.SENT, 1)}


async def test_a_relay_skips_a_message_another_relay_is_claiming(
    make_relay: MakeRelay, sessions: Sessions, aws: Aws, admin_user: User
) -> None:
    aws.verify_sender()
    await notify(sessions, admin_user, "locked")
    async with sessions() as other, other.begin():
        # Another replica in the middle of its claim holds the email's row lock.
        await other.execute(
            select(OutboxMessage.id).where(OutboxMessage.channel == "email").with_for_update()
        )
        report = await asyncio.wait_for(make_relay().run_once(), timeout=10)
        assert report == RelayReport(sent=1)  # the post; the email was skipped, not waited for
    assert aws.emails() == []
    assert await make_relay().run_once() == RelayReport(sent=1)
    assert len(aws.emails()) == 1


async def test_a_relay_that_died_mid_send_leaves_the_message_to_another_after_its_lease(
    make_relay: MakeRelay, sessions: Sessions, aws: Aws, admin_user: User
) -> None:
    aws.verify_sender()
    await notify(sessions, admin_user, "crash")
    dead = make_relay()
    claimed = await dead._claim()  # claimed, then the process died before sending
    assert len(claimed) == 2

    survivor = make_relay()
    assert await survivor.run_once() == RelayReport()  # leased to the dead relay
    await make_due(sessions)  # the lease runs out
    assert await survivor.run_once() == RelayReport(sent=2)
    assert len(aws.emails()) == 1
    rows = await outbox(sessions)
    assert {(r.status, r.attempts) for r in rows} == {(OutboxStatus.SENT, 2)}


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    rng = random.Random(7)
    for attempts, ceiling in ((1, 30), (2, 60), (3, 120), (8, 3600), (500, 3600)):
        waits = [backoff_seconds(attempts, 30, 3600, rng) for _ in range(200)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert max(waits) - min(waits) > ceiling / 4  # jittered, not one fixed delay
