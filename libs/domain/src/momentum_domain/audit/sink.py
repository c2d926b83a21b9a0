"""The audit trail's copy outside the database: each entry, once its transaction commits, goes
out as one JSON line, so that someone able to change the database cannot erase what was done.

Sinks (``MOMENTUM_AUDIT_SINK``): ``log`` writes the line to the ``momentum.audit`` logger (the
embedded setup); ``cloudwatch`` sends it to a CloudWatch Logs group of its own
(``MOMENTUM_AUDIT_LOG_GROUP``, with a retention longer than the application logs'), from a
thread of its own in batches with bounded retries: the request never waits on CloudWatch.

A session's sink comes from its ``info`` (``bind_audit_sink`` on the session factory); sessions
without one use the log sink. Entries of a transaction that rolls back are never sent.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from momentum_domain.config import Settings
from momentum_domain.kit.unit_of_work import after_commit, bind_session_info

logger = logging.getLogger(__name__)
# The log sink's logger: its lines are the audit trail, not diagnostics.
AUDIT_LOGGER = logging.getLogger("momentum.audit")

_SINK = "momentum.audit_sink"
# PutLogEvents takes at most 10,000 events and 1,048,576 bytes, counting 26 bytes per event.
MAX_BATCH_EVENTS = 1000
MAX_BATCH_BYTES = 1_000_000
EVENT_OVERHEAD_BYTES = 26


@dataclass(frozen=True, slots=True)
class AuditLine:
    """One committed audit entry as exported: its time (ms since the epoch) and JSON."""

    timestamp_ms: int
    line: str


class AuditSink(Protocol):
    def submit(self, lines: Sequence[AuditLine]) -> None:
        """Take committed entries; must not block on I/O (called inside the commit)."""

    def flush(self, timeout: float) -> bool:
        """Wait until everything submitted so far is sent; False if not within ``timeout``."""

    def close(self, timeout: float) -> None: ...


class LogSink:
    def submit(self, lines: Sequence[AuditLine]) -> None:
        for entry in lines:
            AUDIT_LOGGER.info(entry.line)

    def flush(self, timeout: float) -> bool:
        return True

    def close(self, timeout: float) -> None:
        return None


class CloudWatchSink:
    """Sends lines to one log stream of ``group`` (one per process: streams need no sequence
    tokens since 2023, but separate streams keep each process's events in order).

    Lines wait in a bounded queue; a daemon thread sends them in batches. A batch that still
    fails after ``max_attempts`` (backoff with jitter) is written to the application log with
    an error, so it is not lost silently; the database row stays either way.
    """

    def __init__(
        self,
        client: Any,
        group: str,
        stream: str,
        *,
        max_attempts: int = 5,
        backoff_seconds: float = 0.5,
        queue_size: int = 10_000,
    ) -> None:
        self._client = client
        self.group = group
        self.stream = stream
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._queue: queue.Queue[AuditLine | None] = queue.Queue(maxsize=queue_size)
        self._stream_created = False
        self._unsent = 0
        self._idle = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="audit-cloudwatch", daemon=True)
        self._thread.start()

    def submit(self, lines: Sequence[AuditLine]) -> None:
        for entry in lines:
            with self._idle:
                self._unsent += 1
            try:
                self._queue.put_nowait(entry)
            except queue.Full:
                self._done(1)
                logger.error("audit sink full; entry not exported: %s", entry.line)

    def flush(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._unsent == 0, timeout)

    def close(self, timeout: float) -> None:
        self.flush(timeout)
        try:
            self._queue.put(None, timeout=1.0)  # still full if the flush timed out
        except queue.Full:
            logger.error("audit sink closed with %d entries unsent", self._unsent)
            return  # a daemon thread: it ends with the process
        self._thread.join(timeout=1.0)

    def _done(self, count: int) -> None:
        with self._idle:
            self._unsent -= count
            self._idle.notify_all()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, size = [first], len(first.line.encode()) + EVENT_OVERHEAD_BYTES
            stop = False
            # Whatever else is already waiting goes in the same call.
            while len(batch) < MAX_BATCH_EVENTS:
                try:
                    entry = self._queue.get_nowait()
                except queue.Empty:
                    break
                if entry is None:
                    stop = True
                    break
                size += len(entry.line.encode()) + EVENT_OVERHEAD_BYTES
                batch.append(entry)
                if size >= MAX_BATCH_BYTES:
                    break
            try:
                self._send(batch)
            except Exception:  # the thread must survive anything one batch does
                logger.exception("audit export failed; entries: %s", [e.line for e in batch])
            finally:
                self._done(len(batch))
            if stop:
                return

    def _send(self, batch: list[AuditLine]) -> None:
        # A call's events must be in time order.
        events = [
            {"timestamp": e.timestamp_ms, "message": e.line}
            for e in sorted(batch, key=lambda e: e.timestamp_ms)
        ]
        for attempt in range(1, self._max_attempts + 1):
            try:
                if not self._stream_created:
                    self._create_stream()
                response = self._client.put_log_events(
                    logGroupName=self.group, logStreamName=self.stream, logEvents=events
                )
                if response.get("rejectedLogEventsInfo"):
                    # Too old or too far in the future for CloudWatch: not retried.
                    logger.error(
                        "CloudWatch rejected audit events (%s); entries: %s",
                        response["rejectedLogEventsInfo"],
                        [e.line for e in batch],
                    )
                return
            except (ClientError, BotoCoreError) as error:
                code = (
                    error.response.get("Error", {}).get("Code")
                    if isinstance(error, ClientError)
                    else None
                )
                if code == "ResourceNotFoundException":
                    self._stream_created = False  # the stream went away: make it again
                if attempt == self._max_attempts:
                    logger.error(
                        "audit export to %s failed after %d attempts (%s); entries: %s",
                        self.group,
                        attempt,
                        error,
                        [e.line for e in batch],
                    )
                    return
                time.sleep(self._backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.5))

    def _create_stream(self) -> None:
        try:
            self._client.create_log_stream(logGroupName=self.group, logStreamName=self.stream)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
                raise
        self._stream_created = True


def create_audit_sink(settings: Settings) -> AuditSink:
    if settings.audit_sink == "log":
        return LogSink()
    if not settings.audit_log_group:
        raise ValueError("MOMENTUM_AUDIT_SINK=cloudwatch needs MOMENTUM_AUDIT_LOG_GROUP")
    client = boto3.client(
        "logs",
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        # Our own loop retries (with the stream re-created if needed); each call stays short.
        config=Config(
            connect_timeout=3,
            read_timeout=10,
            retries={"total_max_attempts": 2, "mode": "standard"},
        ),
    )
    stream = f"{settings.service_name}/{time.strftime('%Y/%m/%d')}/{uuid.uuid4().hex}"
    return CloudWatchSink(client, settings.audit_log_group, stream)


_LOG_SINK = LogSink()


def bind_audit_sink(sessions: async_sessionmaker[AsyncSession], sink: AuditSink) -> None:
    """Sessions from ``sessions`` export their committed audit entries to ``sink``."""
    bind_session_info(sessions, _SINK, sink)


def export_after_commit(session: AsyncSession | Session, entry: AuditLine) -> None:
    """Export ``entry`` once the session's transaction commits; drop it if it rolls back.
    (Savepoints are not tracked: a rolled-back savepoint's entries would still go. The platform
    uses none.)"""
    sink: AuditSink = session.info.get(_SINK, _LOG_SINK)
    after_commit(session, lambda: sink.submit([entry]))


def audit_line(fields: dict[str, Any]) -> str:
    return json.dumps(fields, separators=(",", ":"), sort_keys=True, default=str)
