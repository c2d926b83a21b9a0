"""Audit entries leave the database: each committed admin write becomes one event in the audit
log group (CloudWatch Logs, emulated by moto's server over real HTTP); a write whose
transaction rolls back sends nothing. The API is the real app, on the real database."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_api.app import create_app
from momentum_domain.audit.service import audit
from momentum_domain.audit.sink import AuditLine, CloudWatchSink
from momentum_domain.config import Settings
from momentum_domain.models import AuditLog, Course
from momentum_domain.users.models import Role
from tests.api.conftest import MakeAccount, serve

REGION = "us-east-1"
# Fails the commit of any transaction that inserted a course with this title: a write that
# reached the database (its audit row flushed) and then rolled back.
REFUSED_TITLE = "Refused at commit"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def logs(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return boto3.client("logs", endpoint_url=moto_endpoint, region_name=REGION)


@pytest.fixture
def audit_group(logs: Any) -> str:
    group = f"/momentum/test-{uuid.uuid4().hex[:8]}/audit"
    logs.create_log_group(logGroupName=group)
    return group


def exported(logs: Any, group: str) -> list[dict[str, Any]]:
    """Every event in the group, across its streams, as an operator would read them."""
    events = logs.filter_log_events(logGroupName=group)["events"]
    return [json.loads(e["message"]) | {"_timestamp": e["timestamp"]} for e in events]


@pytest.fixture
async def refuse_course_at_commit(
    sessions: async_sessionmaker[AsyncSession],
) -> Any:
    statements = (
        """CREATE FUNCTION refuse_course() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             IF NEW.title = 'Refused at commit' THEN RAISE EXCEPTION 'refused'; END IF;
             RETURN NULL;
           END $$""",
        """CREATE CONSTRAINT TRIGGER refuse_course AFTER INSERT ON courses
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_course()""",
    )
    async with sessions() as session, session.begin():
        for statement in statements:
            await session.execute(text(statement))
    yield
    async with sessions() as session, session.begin():
        await session.execute(text("DROP TRIGGER refuse_course ON courses"))
        await session.execute(text("DROP FUNCTION refuse_course()"))


async def test_committed_admin_write_is_one_event_and_rolled_back_one_none(
    settings: Settings,
    moto_endpoint: str,
    logs: Any,
    audit_group: str,
    make_account: MakeAccount,
    sessions: async_sessionmaker[AsyncSession],
    refuse_course_at_commit: None,
) -> None:
    app = create_app(
        settings.model_copy(
            update={
                "audit_sink": "cloudwatch",
                "audit_log_group": audit_group,
                "aws_endpoint_url": moto_endpoint,
                "aws_region": REGION,
            }
        )
    )
    admin = await make_account(Role.ADMIN)
    headers = {"Authorization": f"Bearer {app.state.identity.issue_access_token(admin.user)}"}
    sink = app.state.audit_sink
    assert isinstance(sink, CloudWatchSink)
    async with serve(app) as client:
        created = await client.post(
            "/admin/courses", json={"title": "Audited", "duration_days": 7}, headers=headers
        )
        assert created.status_code == 201, created.text
        refused = await client.post(
            "/admin/courses", json={"title": REFUSED_TITLE, "duration_days": 7}, headers=headers
        )
        assert refused.status_code == 500, refused.text
        assert sink.flush(10.0)

        # The rolled-back write left no course and no audit row behind.
        async with sessions() as session:
            titles = set(await session.scalars(select(Course.title)))
            (row,) = (await session.scalars(select(AuditLog))).all()
        assert titles == {"Audited"}

        (event,) = exported(logs, audit_group)
        assert event["id"] == str(row.id)
        assert event["actor_id"] == str(admin.user.id)
        assert event["action"] == "course.create"
        assert event["resource_type"] == "course"
        assert event["resource_id"] == created.json()["id"]
        assert event["details"] == {"title": "Audited"}
        assert event["at"] == row.created_at.isoformat()
        assert event["_timestamp"] == int(row.created_at.timestamp() * 1000)
    # Shutting down closed the sink's thread.
    assert not sink._thread.is_alive()


def test_failed_export_gives_up_after_bounded_retries(
    logs: Any, moto_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A group that does not exist: the sink retries a bounded number of times, then writes
    the entry to the application log with an error instead of blocking or looping."""
    client = boto3.client("logs", endpoint_url=moto_endpoint, region_name=REGION)
    calls: list[str] = []
    client.meta.events.register(
        "before-call.cloudwatch-logs.*", lambda model, **_: calls.append(model.name)
    )
    sink = CloudWatchSink(client, "/momentum/missing/audit", "s", max_attempts=3, backoff_seconds=0)
    with caplog.at_level(logging.ERROR, logger="momentum_domain.audit.sink"):
        sink.submit([AuditLine(timestamp_ms=1, line='{"action":"lost?"}')])
        assert sink.flush(10.0)
    sink.close(1.0)
    assert calls == ["CreateLogStream"] * 3
    assert any('{"action":"lost?"}' in r.getMessage() for r in caplog.records)


async def test_the_log_sink_writes_committed_entries_only(
    sessions: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    """Sessions with no sink bound (workers, scripts) write to the momentum.audit logger."""
    with caplog.at_level(logging.INFO, logger="momentum.audit"):
        async with sessions() as session:
            await audit.record(
                session, actor_id=None, action="test.rolled_back", resource_type="t",
                resource_id="1",
            )  # fmt: skip
            await session.rollback()
            entry = await audit.record(
                session, actor_id=None, action="test.committed", resource_type="t",
                resource_id="2", details={"k": "v"},
            )  # fmt: skip
            assert caplog.records == []  # nothing before the commit
            await session.commit()
    (record,) = [r for r in caplog.records if r.name == "momentum.audit"]
    line = json.loads(record.getMessage())
    assert line["id"] == str(entry.id)
    assert line["action"] == "test.committed"
    assert line["details"] == {"k": "v"}
