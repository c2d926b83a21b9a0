"""The application role the services log in as: data access on the platform's tables (DML),
nothing else. No DDL, no superuser, not the tables' owner: a compromised service can change
rows, not the schema. The migration command provisions it after migrating, as the user that owns
the schema; running it again converges (creates what is missing, grants what later migrations
added). The password is set as a SCRAM verifier computed here, so the clear text never reaches
the server's statement logs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

import asyncpg
from sqlalchemy.engine import make_url

ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
SCRAM_ITERATIONS = 4096  # PostgreSQL's default
# Serialises concurrent provisioning (two migration tasks started at once).
PROVISION_LOCK = 7_316_448_201


def scram_sha_256_verifier(password: str, *, salt: bytes | None = None) -> str:
    """What PostgreSQL stores for a SCRAM-SHA-256 password (RFC 5802 / 7677), in its format.
    Passwords are used as their UTF-8 bytes (SASLprep leaves the ASCII of generated ones alone)."""
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _asyncpg_dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def provision_app_role(
    database_url: str, role: str, password: str, *, pending_password: str | None = None
) -> None:
    """Create or update ``role`` (LOGIN, ``password``) with DML on every table and sequence of
    the public schema, present and future (tables the connecting user creates later). An
    existing role that logs in with ``password`` or ``pending_password`` (the secret's version
    a rotation may have set on the database already) keeps its password."""
    if not ROLE_NAME.fullmatch(role):
        raise ValueError(f"invalid role name {role!r}")
    if not password:
        raise ValueError("the application role needs a password")
    dsn = _asyncpg_dsn(database_url)
    name = f'"{role}"'
    dml, sequences = "SELECT, INSERT, UPDATE, DELETE", "USAGE, SELECT"
    connection = await asyncpg.connect(dsn, server_settings={"application_name": "momentum-roles"})
    try:
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", PROVISION_LOCK)
            exists = await connection.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
            verifier = scram_sha_256_verifier(password)
            if exists:
                await connection.execute(f"ALTER ROLE {name} WITH LOGIN NOCREATEDB NOCREATEROLE")
            else:
                await connection.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{verifier}'")
            database = await connection.fetchval("SELECT quote_ident(current_database())")
            await connection.execute(
                f"""
                GRANT CONNECT ON DATABASE {database} TO {name};
                -- Before PostgreSQL 15 every role may create tables in public.
                REVOKE CREATE ON SCHEMA public FROM PUBLIC;
                GRANT USAGE ON SCHEMA public TO {name};
                GRANT {dml} ON ALL TABLES IN SCHEMA public TO {name};
                REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public FROM {name};
                GRANT {sequences} ON ALL SEQUENCES IN SCHEMA public TO {name};
                ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {dml} ON TABLES TO {name};
                ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {sequences} ON SEQUENCES TO {name};
                """
            )
            if await connection.fetchval("SELECT to_regclass('public.alembic_version')"):
                # The schema's version is the migrations' to change.
                await connection.execute(
                    f"REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {name}"
                )
    finally:
        await connection.close()
    if exists and not await _logs_in(dsn, role, password, pending_password):
        # Only when neither works: the secret rotates on its own schedule, and resetting a
        # working password would undo a rotation that is halfway through (the database on the
        # pending password, which becomes current when the rotation finishes).
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(
                f"ALTER ROLE {name} PASSWORD '{scram_sha_256_verifier(password)}'"
            )
        finally:
            await connection.close()


async def _logs_in(dsn: str, role: str, *passwords: str | None) -> bool:
    """Whether ``role`` logs in with one of ``passwords``."""
    for password in filter(None, passwords):
        try:
            connection = await asyncpg.connect(dsn, user=role, password=password)
        except asyncpg.InvalidAuthorizationSpecificationError:
            continue
        await connection.close()
        return True
    return False
