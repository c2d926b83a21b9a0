"""Database credentials that rotate, and the application role the services log in as.

The shared test servers trust every local login, so a password could be wrong and nothing would
notice. These tests start a PostgreSQL of their own (pgserver's binaries) where only the
superuser is trusted and every other role must pass SCRAM: a connection that opens proves its
password. Secrets Manager is moto's server; the API is the real app, driven through ASGI.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError
from sqlalchemy.engine import make_url

from momentum_api.app import create_app
from momentum_domain.config import Settings
from momentum_domain.kit.db import create_engine, create_sessionmaker
from momentum_domain.kit.db_credentials import Credentials, SecretsManagerCredentials
from momentum_domain.users.models import Role
from momentum_domain.users.service import users
from tests.fixtures.app import serve
from tests.fixtures.database import asyncpg_dsn
from tests.fixtures.moto import moto_server

REPO_ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 8
# New connections each phase of a rotation must see, and how long they may take to open on a
# loaded machine (on a quiet one they take a fraction of a second).
NEW_CONNECTIONS = 5
PHASE_DEADLINE_SECONDS = 60.0
# Short enough that every phase of a rotation opens many new connections; recycling happens at
# checkout, so no request ever holds a connection that is taken away.
POOL_RECYCLE_SECONDS = 0.3


@pytest.fixture(scope="module")
def password_server() -> Iterator[str]:
    """A PostgreSQL that checks passwords: the superuser over the socket is trusted (the test
    arranges and inspects), every other role logs in with SCRAM-SHA-256."""
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pgserver

    # Not under pytest's base temp: as root, pgserver runs the server as another user, and a
    # concurrent pytest run makes pytest-of-root private again, locking that user out.
    parent = Path(tempfile.mkdtemp(prefix="momentum-scram-"))
    server: Any = pgserver.get_server(parent / "pg", cleanup_mode="delete")  # type: ignore[attr-defined]
    (Path(server.pgdata) / "pg_hba.conf").write_text(
        "local all postgres trust\nlocal all all scram-sha-256\n"
    )
    server.psql("SELECT pg_reload_conf();")
    yield str(server.get_uri())
    server.cleanup()
    shutil.rmtree(parent, ignore_errors=True)


@dataclass
class AppDatabase:
    url: str  # the superuser's, postgresql+asyncpg
    role: str
    password: str

    def dsn(self) -> str:
        return asyncpg_dsn(self.url)

    async def connect_as_role(self, password: str | None = None) -> asyncpg.Connection:
        return await asyncpg.connect(
            asyncpg_dsn(self.url), user=self.role, password=password or self.password
        )


def migrate(url: str, role: str, password: str, **environment: str) -> None:
    """The migration command, as the deployed task runs it: as the superuser, given the
    application role's name and password."""
    subprocess.run(
        [sys.executable, "-m", "momentum_domain.migrations", "upgrade"],
        env={
            **os.environ,
            "MOMENTUM_DATABASE_URL": url,
            "MOMENTUM_DATABASE_APP_USER": role,
            "MOMENTUM_DATABASE_APP_PASSWORD": password,
            **environment,
        },
        cwd=REPO_ROOT,
        check=True,
        timeout=120,
    )


@pytest.fixture
def app_database(password_server: str) -> Iterator[AppDatabase]:
    """A database of its own, migrated with an application role of its own."""
    name = f"rotation_{uuid.uuid4().hex[:8]}"
    role = f"momentum_app_{uuid.uuid4().hex[:6]}"
    password = uuid.uuid4().hex
    server = make_url(Settings.model_validate({"database_url": password_server}).database_url)
    url = server.set(database=name).render_as_string(hide_password=False)
    superuser = asyncpg_dsn(server.render_as_string(hide_password=False))

    async def execute(statement: str) -> None:
        connection = await asyncpg.connect(superuser)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    migrate(url, role, password)
    yield AppDatabase(url=url, role=role, password=password)
    asyncio.run(execute(f'DROP DATABASE "{name}" WITH (FORCE)'))
    asyncio.run(execute(f'DROP OWNED BY "{role}"; DROP ROLE "{role}"'))


# --- the application role -------------------------------------------------------------------


async def test_migration_provisions_an_app_role_with_dml_and_no_ddl(
    app_database: AppDatabase,
) -> None:
    attributes = await _superuser_fetchrow(
        app_database,
        "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, "
        "rolbypassrls FROM pg_roles WHERE rolname = $1",
        app_database.role,
    )
    assert dict(attributes) == {
        "rolcanlogin": True,
        "rolsuper": False,
        "rolcreatedb": False,
        "rolcreaterole": False,
        "rolreplication": False,
        "rolbypassrls": False,
    }
    owned = await _superuser_fetchrow(
        app_database,
        "SELECT count(*) AS n FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
        "WHERE r.rolname = $1",
        app_database.role,
    )
    assert owned["n"] == 0

    connection = await app_database.connect_as_role()  # the password works (SCRAM)
    try:
        # DML on the platform's tables.
        await connection.execute(
            "INSERT INTO categories (slug, name, description, sort_order) "
            "VALUES ('probe', 'Probe', '', 99)"
        )
        await connection.execute("UPDATE categories SET name = 'Probed' WHERE slug = 'probe'")
        assert await connection.fetchval("SELECT name FROM categories WHERE slug = 'probe'") == (
            "Probed"
        )
        await connection.execute("DELETE FROM categories WHERE slug = 'probe'")
        assert await connection.fetchval("SELECT version_num FROM alembic_version")
        # No DDL, no TRUNCATE, no schema version changes.
        for statement in (
            "CREATE TABLE intruder (id int)",
            "DROP TABLE categories",
            "ALTER TABLE categories ADD COLUMN intruder int",
            "TRUNCATE categories CASCADE",
            "CREATE INDEX intruder ON categories (name)",
            "DELETE FROM alembic_version",
            "CREATE ROLE intruder",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.execute(statement)
    finally:
        await connection.close()


async def test_tables_of_later_migrations_are_granted_and_reprovisioning_converges(
    app_database: AppDatabase,
) -> None:
    # A later migration, run as the superuser like the first.
    await _superuser_execute(app_database, "CREATE TABLE later_table (id serial PRIMARY KEY)")
    connection = await app_database.connect_as_role()
    try:
        await connection.execute("INSERT INTO later_table DEFAULT VALUES")  # table and sequence
        assert await connection.fetchval("SELECT count(*) FROM later_table") == 1
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.execute("DROP TABLE later_table")
    finally:
        await connection.close()

    # Running the command again with another password (the secret was replaced) sets it.
    new_password = uuid.uuid4().hex
    await asyncio.to_thread(migrate, app_database.url, app_database.role, new_password)
    with pytest.raises(asyncpg.InvalidPasswordError):
        await app_database.connect_as_role(app_database.password)
    connection = await app_database.connect_as_role(new_password)
    await connection.close()


async def test_migrating_mid_rotation_leaves_the_rotated_password(
    app_database: AppDatabase, moto_endpoint: str, aws_credentials: None
) -> None:
    secrets, arn = _secret(moto_endpoint, app_database.role, app_database.password)
    old, new = app_database.password, uuid.uuid4().hex
    version = await asyncio.to_thread(_stage_pending, secrets, arn, app_database.role, new)
    # The rotation's setSecret: the database is on the pending password.
    await _superuser_execute(app_database, f"ALTER ROLE \"{app_database.role}\" PASSWORD '{new}'")
    # A migration task started before the rotation: given AWSCURRENT (the old password), and
    # the secret, which it reads itself.
    aws = {"MOMENTUM_DATABASE_SECRET_ARN": arn, "MOMENTUM_AWS_ENDPOINT_URL": moto_endpoint}
    await asyncio.to_thread(migrate, app_database.url, app_database.role, old, **aws)
    connection = await app_database.connect_as_role(new)  # what becomes current at finishSecret
    await connection.close()
    with pytest.raises(asyncpg.InvalidPasswordError):
        await app_database.connect_as_role(old)

    # Once the rotation has finished, the task's copy of the old password is stale: what the
    # secret holds now counts.
    await asyncio.to_thread(_finish_rotation, secrets, arn, version)
    await asyncio.to_thread(migrate, app_database.url, app_database.role, old, **aws)
    connection = await app_database.connect_as_role(new)
    await connection.close()


def test_a_url_setting_the_adapters_statement_cache_is_refused() -> None:
    # Connections open through async_creator: SQLAlchemy would build its adapter with the
    # default cache whatever the URL says.
    url = "postgresql://app@127.0.0.1/momentum?prepared_statement_cache_size=0"
    with pytest.raises(ValueError, match="prepared_statement_cache_size"):
        create_engine(Settings(database_url=url))


# --- rotation under load --------------------------------------------------------------------


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """What boto3 signs moto's requests with, for this test only."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def _secret(endpoint: str, username: str, password: str) -> tuple[Any, str]:
    """A Secrets Manager client and a new secret's ARN."""
    client = boto3.client("secretsmanager", endpoint_url=endpoint, region_name="us-east-1")
    arn = client.create_secret(
        Name=f"momentum/test/database-app-{uuid.uuid4().hex[:6]}",
        SecretString=json.dumps({"username": username, "password": password}),
    )["ARN"]
    return client, arn


def _stage_pending(client: Any, arn: str, username: str, password: str) -> str:
    """The rotation's first step: the new password as AWSPENDING; its version."""
    version: str = client.put_secret_value(
        SecretId=arn,
        SecretString=json.dumps({"username": username, "password": password}),
        VersionStages=["AWSPENDING"],
    )["VersionId"]
    return version


@dataclass
class Traffic:
    requests: int = 0
    failures: list[str] = field(default_factory=list)


async def test_password_rotation_under_load_fails_no_request(
    app_database: AppDatabase, moto_endpoint: str, settings: Settings, aws_credentials: None
) -> None:
    secrets, secret_arn = _secret(moto_endpoint, app_database.role, app_database.password)
    app_settings = settings.model_copy(
        update={
            # No user or password in the URL: they come from the secret.
            "database_url": make_url(app_database.url)
            .set(username=None, password=None)
            .render_as_string(hide_password=False),
            "database_secret_arn": secret_arn,
            "aws_endpoint_url": moto_endpoint,
            "database_pool_recycle_seconds": POOL_RECYCLE_SECONDS,
        }
    )
    assert app_settings.database_secret_cache_seconds >= 60  # refreshes come from rejections
    app = create_app(app_settings)
    token = await _learner_token(app_database, app)

    traffic = Traffic()
    stop = asyncio.Event()
    backends: dict[int, datetime] = {}  # the role's server processes: pid -> started

    async def client_loop(client: Any) -> None:
        while not stop.is_set():
            try:
                response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
                if response.status_code != 200:
                    traffic.failures.append(f"{response.status_code} {response.text[:200]}")
            except Exception as error:  # a failed request, whatever its form
                traffic.failures.append(repr(error))
            traffic.requests += 1

    async def watch_backends() -> None:
        watcher = await asyncpg.connect(app_database.dsn())
        try:
            while not stop.is_set():
                rows = await watcher.fetch(
                    "SELECT pid, backend_start FROM pg_stat_activity WHERE usename = $1",
                    app_database.role,
                )
                backends.update({row["pid"]: row["backend_start"] for row in rows})
                await asyncio.sleep(0.02)
        finally:
            await watcher.close()

    async def connections_open(phase: str, since: datetime | None = None) -> None:
        """Waits for NEW_CONNECTIONS to open after ``since`` (the server's clock; now if not
        given): under SCRAM each one proves the password it logged in with."""
        if since is None:
            since = await _superuser_fetchval(app_database, "SELECT clock_timestamp()")
        deadline = time.monotonic() + PHASE_DEADLINE_SECONDS
        while not traffic.failures:
            opened = sum(started > since for started in backends.values())
            if opened >= NEW_CONNECTIONS:
                return
            assert time.monotonic() < deadline, f"{phase}: {opened} new connections"
            await asyncio.sleep(0.02)

    passwords = [app_database.password]
    started = time.monotonic()
    async with serve(app) as client:
        tasks = [asyncio.create_task(client_loop(client)) for _ in range(CLIENTS)]
        tasks.append(asyncio.create_task(watch_backends()))
        try:
            for rotation in (1, 2):
                # What Secrets Manager's single-user rotation does: stage the new password as
                # AWSPENDING, set it on the database, test it, then make it AWSCURRENT.
                # Connections keep opening after each step.
                new_password = uuid.uuid4().hex
                version = await asyncio.to_thread(
                    _stage_pending, secrets, secret_arn, app_database.role, new_password
                )
                await connections_open(f"rotation {rotation}, pending")
                set_at = await _superuser_fetchval(
                    app_database,
                    f"ALTER ROLE \"{app_database.role}\" PASSWORD '{new_password}'; "
                    "SELECT clock_timestamp()",
                )
                await connections_open(f"rotation {rotation}, set", set_at)
                await asyncio.to_thread(_finish_rotation, secrets, secret_arn, version)
                passwords.append(new_password)
                await connections_open(f"rotation {rotation}, finished")
        finally:
            stop.set()
            await asyncio.gather(*tasks)

    print(  # the figures the issue asks for
        f"\nrotation under load: {traffic.requests} requests, {len(traffic.failures)} failed, "
        f"{len(backends)} connections opened as {app_database.role} "
        f"in {time.monotonic() - started:.1f} s"
    )
    assert traffic.failures == []
    # The old passwords are refused: a process that read its password once would now fail.
    for old in passwords[:-1]:
        with pytest.raises(asyncpg.InvalidPasswordError):
            await app_database.connect_as_role(old)


def _finish_rotation(secrets: Any, secret_arn: str, version: str) -> None:
    """The rotation's last step: the new version becomes AWSCURRENT."""
    stages = secrets.describe_secret(SecretId=secret_arn)["VersionIdsToStages"]
    (previous,) = [v for v, labels in stages.items() if "AWSCURRENT" in labels]
    secrets.update_secret_version_stage(
        SecretId=secret_arn,
        VersionStage="AWSCURRENT",
        MoveToVersionId=version,
        RemoveFromVersionId=previous,
    )
    secrets.update_secret_version_stage(
        SecretId=secret_arn, VersionStage="AWSPENDING", RemoveFromVersionId=version
    )


async def _learner_token(app_database: AppDatabase, app: Any) -> str:
    engine = create_engine(Settings(database_url=app_database.url))
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            user = await users.create_local(
                session,
                email="rotation@example.com",
                password="correct horse battery staple",
                name="Rotation",
                role=Role.FREE,
            )
    finally:
        await engine.dispose()
    token: str = app.state.identity.issue_access_token(user)
    return token


async def _superuser_execute(app_database: AppDatabase, statement: str) -> None:
    connection = await asyncpg.connect(app_database.dsn())
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _superuser_fetchrow(app_database: AppDatabase, query: str, *args: Any) -> Any:
    connection = await asyncpg.connect(app_database.dsn())
    try:
        return await connection.fetchrow(query, *args)
    finally:
        await connection.close()


async def _superuser_fetchval(app_database: AppDatabase, statements: str) -> Any:
    """Runs ``statements``; the last one's single value."""
    connection = await asyncpg.connect(app_database.dsn())
    try:
        *setup, last = [s for s in statements.split("; ") if s]
        for statement in setup:
            await connection.execute(statement)
        return await connection.fetchval(last)
    finally:
        await connection.close()


async def test_a_cached_login_outlives_a_secrets_manager_outage(aws_credentials: None) -> None:
    with moto_server() as endpoint:
        client = boto3.client(
            "secretsmanager",
            endpoint_url=endpoint,
            region_name="us-east-1",
            config=Config(connect_timeout=1, retries={"total_max_attempts": 1}),
        )
        arn = client.create_secret(
            Name="momentum/test/outage", SecretString='{"username": "app", "password": "one"}'
        )["ARN"]
        source = SecretsManagerCredentials(arn, ttl=0, client=client)  # every call re-reads
        assert await source.current() == Credentials("app", "one")
    # Unreachable: the last value it read (most likely still valid) rather than no connection.
    assert await source.current() == Credentials("app", "one")
    assert await source.after_rejection(Credentials("app", "one")) is None
    with pytest.raises(EndpointConnectionError):
        await SecretsManagerCredentials(arn, ttl=0, client=client).current()


async def test_a_rotation_finishing_between_two_reads_is_seen(
    moto_endpoint: str, aws_credentials: None
) -> None:
    secrets, arn = _secret(moto_endpoint, "app", "one")
    version = _stage_pending(secrets, arn, "app", "two")

    class FinishingMidway:
        """Secrets Manager where finishSecret lands just before the pending version is read:
        the source read AWSCURRENT ("one", refused), and AWSPENDING is gone."""

        def get_secret_value(self, **kwargs: Any) -> Any:
            if kwargs["VersionStage"] == "AWSPENDING":
                _finish_rotation(secrets, arn, version)
            return secrets.get_secret_value(**kwargs)

    source = SecretsManagerCredentials(arn, ttl=60, client=FinishingMidway())
    assert await source.current() == Credentials("app", "one")
    assert await source.after_rejection(Credentials("app", "one")) == Credentials("app", "two")


def test_waiting_for_a_slow_secrets_manager_holds_no_shared_thread(
    moto_endpoint: str, aws_credentials: None
) -> None:
    secrets, arn = _secret(moto_endpoint, "app", "one")
    answer = threading.Event()
    reads: list[str] = []

    class Slow:
        """Secrets Manager answering only when the test says so."""

        def get_secret_value(self, **kwargs: Any) -> Any:
            reads.append(kwargs["VersionStage"])
            answer.wait(10)
            return secrets.get_secret_value(**kwargs)

    source = SecretsManagerCredentials(arn, ttl=60, client=Slow())

    async def main() -> list[Credentials]:
        # A default executor of one thread: the S3 calls and the outbox's sends run there.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=1))
        try:
            connections = [asyncio.create_task(source.current()) for _ in range(20)]
            await asyncio.sleep(0.1)  # every connection waiting for the secret
            assert await asyncio.wait_for(asyncio.to_thread(str, "served"), 2) == "served"
        finally:
            answer.set()
        return await asyncio.gather(*connections)

    # In a loop of its own, whose default executor the test may replace.
    assert asyncio.run(main()) == [Credentials("app", "one")] * 20
    assert reads == ["AWSCURRENT"]  # one read for them all
