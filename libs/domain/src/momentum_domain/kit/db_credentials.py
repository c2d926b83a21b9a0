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
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from momentum_domain.config import Settings

logger = logging.getLogger(__name__)
_T = TypeVar("_T")


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
    """A secret's AWSCURRENT value, cached for ``ttl`` seconds. boto3 blocks, so reads run on a
    thread of the source's own, one at a time: connections waiting for a slow Secrets Manager
    hold none of the default executor's threads (S3 calls, the outbox's sends). A refresh that
    waited its turn takes the answer of a read that started after it was asked for: a pool
    filling up makes one request, and an outage costs it one timeout, not one per connection."""

    def __init__(self, secret_id: str, *, ttl: float, client: Any) -> None:
        self.secret_id = secret_id
        self.ttl = ttl
        self._client = client
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="database-secret")
        self._cached: tuple[float, Credentials] | None = None  # (read at, value)
        # The last refresh: when its read started, and what it gave (or raised).
        self._last_read: tuple[float, Credentials | Exception] = (-math.inf, RuntimeError())

    async def current(self) -> Credentials:
        cached = self._cached
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        return await self._on_own_thread(self._refresh, time.monotonic(), None)

    async def after_rejection(self, rejected: Credentials) -> Credentials | None:
        fresh = await self._on_own_thread(self._refresh, time.monotonic(), rejected)
        if fresh != rejected:
            return fresh
        # The secret still holds what the server refused: a rotation has set its pending
        # version on the database and not yet made it current.
        try:
            pending = await self.read("AWSPENDING")
        except (BotoCoreError, ClientError):
            logger.warning("database secret's pending version unreadable", exc_info=True)
            return None
        if pending is not None and pending != rejected:
            return pending
        # No pending version (any more): the rotation may have finished between the two reads.
        fresh = await self._on_own_thread(self._refresh, time.monotonic(), rejected)
        return fresh if fresh != rejected else None

    async def read(self, stage: str) -> Credentials | None:
        """The version labelled ``stage`` now, uncached; None if no version has that label."""
        return await self._on_own_thread(self._read, stage)

    async def _on_own_thread(self, function: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, function, *args)

    def _refresh(self, asked_at: float, rejected: Credentials | None) -> Credentials:
        started, outcome = self._last_read
        if started >= asked_at:
            # A read that started after this refresh was asked for has answered it.
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        cached = self._cached
        if cached is not None and (
            cached[1] != rejected
            if rejected is not None
            else time.monotonic() - cached[0] < self.ttl
        ):
            return cached[1]  # refreshed while this one waited
        read_at = time.monotonic()
        outcome = self._read_current(read_at)
        self._last_read = (read_at, outcome)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def _read_current(self, read_at: float) -> Credentials | Exception:
        try:
            credentials = self._read("AWSCURRENT")
        except (BotoCoreError, ClientError) as error:
            cached = self._cached
            if cached is None:
                return error
            # Secrets Manager unreachable: the last value most likely still works. Try
            # again after another ttl, or at once if the server refuses it.
            logger.warning("database secret unreadable; using the cached value", exc_info=True)
            self._cached = (read_at, cached[1])
            return cached[1]
        if credentials is None:
            return RuntimeError(f"secret {self.secret_id} has no AWSCURRENT version")
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
    return secrets_manager_credentials(settings)


def secrets_manager_credentials(settings: Settings) -> SecretsManagerCredentials:
    """The source reading ``settings.database_secret_arn``."""
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
