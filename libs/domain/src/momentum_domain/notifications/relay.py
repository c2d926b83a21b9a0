"""The outbox relay: delivers PENDING notification rows through a Sender (SES and SNS), at least
once, from any number of replicas.

A pass claims due rows in one short transaction: ``FOR UPDATE SKIP LOCKED`` (concurrent relays
skip each other's rows instead of queueing behind them), the attempt is counted and
``next_attempt_at`` is pushed a lease ahead, then it commits. The lease, not a row lock, keeps
other relays away while the message is sent: no transaction or pooled connection is held across
the network call, and a batch's sends run side by side. Each result is written in its own short
transaction right after its send:

- sent: the row becomes SENT (only from PENDING or FAILED, so SENT is written once);
- failed: it stays PENDING, due again after an exponential backoff with jitter, with the error
  kept; after ``notify_max_attempts`` attempts, or at once for a message that can never be
  delivered, it becomes FAILED and one error is logged. A failure is written only if the row is
  still at the attempt this relay claimed (the attempt count is the lease's token), so a relay
  whose lease ran out cannot undo a newer claim.

At least once, not exactly once: a relay that dies after SES accepted a message but before its
result is committed leaves the row PENDING; when the lease runs out another relay sends it again
and the admin gets the email twice. The lease is far longer than a send can last (boto3's
timeouts bound it), so this takes a crash, a kill, or a database outage at the wrong moment.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_domain.config import Settings
from momentum_domain.kit.unit_of_work import transaction
from momentum_domain.notifications.models import OutboxMessage, OutboxStatus
from momentum_domain.notifications.service import Envelope, PermanentFailure, Sender

logger = logging.getLogger(__name__)
MAX_ERROR_CHARS = 1000


@dataclass
class RelayReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0

    @property
    def claimed(self) -> int:
        return self.sent + self.retrying + self.failed


def backoff_seconds(attempts: int, base: float, cap: float, rng: random.Random) -> float:
    """The wait after the given number of failed attempts: ``base * 2**(attempts - 1)``, capped,
    then jittered between half and all of it ("equal jitter"), so the replicas that failed
    together during an outage do not all come back at the same moment."""
    ceiling = min(cap, base * 2.0 ** min(attempts - 1, 62))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


class OutboxRelay:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        sender: Sender,
        settings: Settings,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._sessions = sessions
        self._sender = sender
        self._settings = settings
        self._rng = rng or random.Random()

    async def run_once(self) -> RelayReport:
        """One pass: claim up to a batch of due messages, send them, record each result."""
        report = RelayReport()
        claimed = await self._claim()
        outcomes = await asyncio.gather(
            *(self._deliver(message, attempt) for message, attempt in claimed),
            return_exceptions=True,
        )
        for (message, _), outcome in zip(claimed, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                # Its result was not recorded: the lease runs out and it is sent again.
                logger.error("outbox message %s: result not recorded: %r", message.id, outcome)
            elif outcome is OutboxStatus.SENT:
                report.sent += 1
            elif outcome is OutboxStatus.FAILED:
                report.failed += 1
            else:
                report.retrying += 1
        return report

    async def _claim(self) -> list[tuple[Envelope, int]]:
        settings = self._settings
        table = OutboxMessage
        async with transaction(self._sessions) as session:
            # A relay that stopped during a message's last attempt never recorded its result;
            # once that lease is over there is no attempt left to make.
            abandoned = await session.scalars(
                update(table)
                .where(
                    table.status == OutboxStatus.PENDING,
                    table.attempts >= settings.notify_max_attempts,
                    table.next_attempt_at <= func.now(),
                )
                .values(
                    status=OutboxStatus.FAILED,
                    last_error=func.concat_ws(
                        " / ", table.last_error, "the last attempt's result was never recorded"
                    ),
                )
                .returning(table.id)
                .execution_options(synchronize_session=False)
            )
            for message_id in abandoned:
                logger.error("outbox message %s failed: no attempt left", message_id)
            due = (
                select(table.id)
                .where(
                    table.status == OutboxStatus.PENDING,
                    table.next_attempt_at <= func.now(),
                    table.attempts < settings.notify_max_attempts,
                )
                .order_by(table.next_attempt_at)
                .limit(settings.notify_relay_batch)
                .with_for_update(skip_locked=True)
            )
            rows = await session.execute(
                update(table)
                .where(table.id.in_(due.scalar_subquery()))
                .values(
                    attempts=table.attempts + 1,
                    next_attempt_at=func.now() + timedelta(seconds=settings.notify_lease_seconds),
                )
                .returning(
                    table.id,
                    table.channel,
                    table.recipient,
                    table.subject,
                    table.body,
                    table.attempts,
                )
                .execution_options(synchronize_session=False)
            )
            return [
                (Envelope(row.id, row.channel, row.recipient, row.subject, row.body), row.attempts)
                for row in rows
            ]

    async def _deliver(self, message: Envelope, attempt: int) -> OutboxStatus | None:
        """Send one claimed message and record the result: SENT, FAILED, or None when it will be
        retried (or a newer claim owns it)."""
        try:
            provider_id = await asyncio.to_thread(self._sender.send, message)
        except PermanentFailure as exc:
            return await self._record_failure(message, attempt, exc, final=True)
        except Exception as exc:
            final = attempt >= self._settings.notify_max_attempts
            return await self._record_failure(message, attempt, exc, final=final)
        async with transaction(self._sessions) as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message.id, OutboxMessage.status != OutboxStatus.SENT)
                .values(status=OutboxStatus.SENT, sent_at=func.now(), last_error=None)
                .execution_options(synchronize_session=False)
            )
        logger.info("outbox message %s sent (%s) as %s", message.id, message.channel, provider_id)
        return OutboxStatus.SENT

    async def _record_failure(
        self, message: Envelope, attempt: int, exc: Exception, *, final: bool
    ) -> OutboxStatus | None:
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        settings = self._settings
        if final:
            values: dict[str, object] = {"status": OutboxStatus.FAILED, "last_error": error}
        else:
            delay = backoff_seconds(
                attempt,
                settings.notify_retry_base_seconds,
                settings.notify_retry_max_seconds,
                self._rng,
            )
            values = {"next_attempt_at": func.now() + timedelta(seconds=delay), "last_error": error}
        async with transaction(self._sessions) as session:
            recorded = await session.scalar(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == message.id,
                    OutboxMessage.status == OutboxStatus.PENDING,
                    OutboxMessage.attempts == attempt,
                )
                .values(values)
                .returning(OutboxMessage.id)
                .execution_options(synchronize_session=False)
            )
        if recorded is None:
            return None  # a newer claim owns the message now
        if final:
            logger.error(
                "outbox message %s (%s to %s) failed after %d attempts: %s",
                message.id,
                message.channel,
                message.recipient,
                attempt,
                error,
            )
            return OutboxStatus.FAILED
        logger.warning("outbox message %s not sent (attempt %d): %s", message.id, attempt, error)
        return None


__all__ = ["OutboxRelay", "RelayReport", "backoff_seconds"]
