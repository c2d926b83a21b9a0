"""Where a new database connection gets its user and password.

Static credentials come from the URL (the embedded stack, tests, local runs). On AWS the services
read a Secrets Manager secret that rotates (JSON with ``username`` and ``password``, as RDS and
the rotation functions write it) at each new connection, cached for a short time: a rotated
password reaches the next connection without a restart. When the server refuses a login, the
secret is read again at once, and during a rotation the version waiting to become current
(``AWSPENDING``, already set on the database by the single-user rotation) is tried as well.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from momentum_domain.config import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never print the password
        return f"Credentials(username={self.username!r})"


class CredentialSource(Protocol):
    async def current(self) -> Credentials:
        """What a new connection logs in with."""
        ...

    async def after_rejection(self, rejected: Credentials) -> Credentials | None:
        """What to try once more after the server refused ``rejected``; None if nothing else."""
        ...


class StaticCredentials:
    def __init__(self, username: str, password: str) -> None:
        self._credentials = Credentials(username, password)

    async def current(self) -> Credentials:
        return self._credentials

    async def after_rejection(self, rejected: Credentials) -> Credentials | None:
        return None


class SecretsManagerCredentials:
    """A secret's AWSCURRENT value, cached for ``ttl`` seconds. boto3 blocks, so reads run in a
    worker thread; a lock there makes concurrent refreshes (a pool filling up) one request."""

    def __init__(self, secret_id: str, *, ttl: float, client: Any) -> None:
        self.secret_id = secret_id
        self.ttl = ttl
        self._client = client
        self._lock = threading.Lock()
        self._cached: tuple[float, Credentials] | None = None  # (read at, value)

    async def current(self) -> Credentials:
        cached = self._cached
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        return await asyncio.to_thread(self._refresh, None)

    async def after_rejection(self, rejected: Credentials) -> Credentials | None:
        fresh = await asyncio.to_thread(self._refresh, rejected)
        if fresh != rejected:
            return fresh
        # The secret still holds what the server refused: a rotation has set its pending
        # version on the database and not yet made it current.
        try:
            pending = await asyncio.to_thread(self._read, "AWSPENDING")
        except (BotoCoreError, ClientError):
            logger.warning("database secret's pending version unreadable", exc_info=True)
            return None
        return pending if pending is not None and pending != rejected else None

    def _refresh(self, rejected: Credentials | None) -> Credentials:
        with self._lock:
            cached = self._cached
            if cached is not None:
                # Someone refreshed while this thread waited for the lock.
                if rejected is not None and cached[1] != rejected:
                    return cached[1]
                if rejected is None and time.monotonic() - cached[0] < self.ttl:
                    return cached[1]
            read_at = time.monotonic()
            try:
                credentials = self._read("AWSCURRENT")
            except (BotoCoreError, ClientError):
                if cached is None:
                    raise
                # Secrets Manager unreachable: the last value most likely still works. Try
                # again after another ttl, or at once if the server refuses it.
                logger.warning("database secret unreadable; using the cached value", exc_info=True)
                self._cached = (read_at, cached[1])
                return cached[1]
            if credentials is None:
                raise RuntimeError(f"secret {self.secret_id} has no AWSCURRENT version")
            self._cached = (read_at, credentials)
            return credentials

    def _read(self, stage: str) -> Credentials | None:
        try:
            response = self._client.get_secret_value(SecretId=self.secret_id, VersionStage=stage)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise
        value = json.loads(response["SecretString"])
        return Credentials(str(value["username"]), str(value["password"]))


def credential_source(settings: Settings, url_username: str, url_password: str) -> CredentialSource:
    if not settings.database_secret_arn:
        return StaticCredentials(url_username, url_password)
    client = boto3.client(
        "secretsmanager",
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        config=Config(
            connect_timeout=3, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"}
        ),
    )
    return SecretsManagerCredentials(
        settings.database_secret_arn, ttl=settings.database_secret_cache_seconds, client=client
    )
