"""Turns bearer tokens into principals, and (local identity provider) users into tokens."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

import jwt
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_api.identity.keys import SigningKey
from momentum_api.identity.principal import Principal
from momentum_api.identity.userinfo import UserInfo, UserInfoClient
from momentum_api.identity.verifier import TokenVerifier
from momentum_api.lru import TtlCache
from momentum_domain.config import Settings
from momentum_domain.errors import ServiceUnavailable, Unauthorized
from momentum_domain.kit.db import run
from momentum_domain.kit.unit_of_work import transaction
from momentum_domain.users.models import Role, User
from momentum_domain.users.service import LOCAL_PROVIDER, users

logger = logging.getLogger(__name__)

COGNITO_PROVIDER = "cognito"
# How long a process trusts its cached view of a user (role for the route guards, revocation,
# erasure). An admin's role change and an erasure are announced on FORGET_CHANNEL and dropped
# everywhere within milliseconds; the TTL bounds what a lost announcement could leave. While a
# process cannot hear announcements (Redis unreachable) it trusts its view only briefly. Course
# access does not use this view: the entitlement rule reads the role from the user's row.
PRINCIPAL_TTL_SECONDS = 60.0
PRINCIPAL_TTL_UNANNOUNCED_SECONDS = 5.0
FORGET_CHANNEL = "identity:forget"
# Ended sessions (sign-out, a replayed refresh token) are announced on the same channel as
# "session:<sid>" and kept in this sorted set (score: until when their access tokens could
# still be valid), which a process reads whenever it (re)subscribes, so none is missed.
SESSION_ANNOUNCEMENT = "session:"
REVOKED_SESSIONS_KEY = "identity:revoked-sessions"
# Past an access token's lifetime: the verifier's clock-skew leeway.
REVOCATION_MARGIN_SECONDS = 60
# The listener pings Redis when the channel is quiet; no answer within twice this, it reconnects.
HEARTBEAT_SECONDS = 5.0
# How often the listener looks up from waiting (to notice it should stop).
POLL_SECONDS = 0.5
# What a principal is made of, read in one statement outside any transaction. Built once: the
# statement's cache key is computed once, not on every lookup.
_PRINCIPAL = select(
    User.id, User.email, User.name, User.role, User.erased_at, User.tokens_valid_after
)
PRINCIPAL_BY_ID = _PRINCIPAL.where(User.id == bindparam("subject", type_=User.id.type))
PRINCIPAL_BY_IDENTITY = _PRINCIPAL.where(
    User.identity_provider == bindparam("provider"), User.subject == bindparam("subject")
)


class RevokedSessions:
    """Session ids whose access tokens are refused, each until none of them can be valid."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._next_prune = 0.0

    def add(self, session_id: str, until: float) -> None:
        self._until[session_id] = max(until, self._until.get(session_id, 0.0))
        now = time.time()
        if now >= self._next_prune:  # at most once a minute
            self._until = {sid: end for sid, end in self._until.items() if end > now}
            self._next_prune = now + 60

    def __contains__(self, session_id: str) -> bool:
        return self._until.get(session_id, 0.0) > time.time()


def role_from_groups(groups: Any) -> Role:
    names = set(groups) if isinstance(groups, list) else set()
    if Role.ADMIN.value in names:
        return Role.ADMIN
    if Role.PREMIUM.value in names:
        return Role.PREMIUM
    return Role.FREE


class Identity:
    def __init__(
        self,
        settings: Settings,
        verifier: TokenVerifier,
        sessions: async_sessionmaker[AsyncSession],
        autocommit_sessions: async_sessionmaker[AsyncSession],
        signing_key: SigningKey | None,
        announcements: Redis,
        userinfo: UserInfoClient | None = None,
    ) -> None:
        """``announcements`` is a Redis client of its own, without a read timeout: the
        subscriber waits on reads for as long as the channel is quiet. ``userinfo`` is where
        the email of a user first seen with an email-less (Cognito) access token comes from."""
        self.settings = settings
        self._userinfo = userinfo
        self._redis = announcements
        self._hearing_announcements = False
        self._listener: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        # Counts forgets, so a principal read while one happened is not trusted for long.
        self._forgets = 0
        self.verifier = verifier
        self.sessions = sessions
        self.autocommit_sessions = autocommit_sessions
        self.signing_key = signing_key
        self.provider = LOCAL_PROVIDER if signing_key else COGNITO_PROVIDER
        # subject -> (principal, tokens valid after): one user lookup per subject and process
        # per TTL instead of one per request.
        self._principals: TtlCache[tuple[Principal, int | None]] = TtlCache(10_000)
        self._revoked = RevokedSessions()
        self._revocation_seconds = (
            settings.auth_access_token_ttl_seconds + REVOCATION_MARGIN_SECONDS
        )

    async def authenticate(self, token: str) -> Principal:
        verified = await self.verifier.verify(token)
        claims = verified.claims
        sid = claims.get("sid")
        if isinstance(sid, str) and sid in self._revoked:
            raise Unauthorized("This session has ended; sign in again.")
        cached = self._principals.get(verified.subject)
        if cached is None:
            forgets_before = self._forgets
            cached = await self._load(verified.subject, claims, token)
            # A forget that arrived while the user was being read may concern what was read:
            # keep that only briefly. Otherwise trust it as long as announcements are heard.
            trusted = self._hearing_announcements and self._forgets == forgets_before
            ttl = PRINCIPAL_TTL_SECONDS if trusted else PRINCIPAL_TTL_UNANNOUNCED_SECONDS
            self._principals.put(verified.subject, cached, ttl)
        principal, valid_after = cached
        if valid_after is not None and claims["iat"] < valid_after:
            raise Unauthorized("The access token has been revoked; sign in again.")
        return principal

    @property
    def hearing_announcements(self) -> bool:
        return self._hearing_announcements

    async def forget(self, user_id: uuid.UUID) -> None:
        """Drop a user from every API process's cache (role change, erasure): from this one at
        once, from the others as soon as Redis delivers the announcement."""
        self._forget_here(user_id)
        try:
            # Bounded: this client has no read timeout (the subscriber needs none).
            await asyncio.wait_for(self._redis.publish(FORGET_CHANNEL, str(user_id)), 1.0)
        except (RedisError, TimeoutError) as exc:
            logger.warning("other API processes not told to forget %s: %r", user_id, exc)

    async def end_session(self, session_id: uuid.UUID) -> None:
        """Refuse the access tokens of a session (``sid`` claim) in every API process: in this
        one at once, in the others as soon as Redis delivers the announcement. Its refresh
        tokens are revoked in the database (users.end_session). With Redis unreachable only
        this process knows: elsewhere its access tokens live out their 15 minutes."""
        sid = str(session_id)
        until = time.time() + self._revocation_seconds
        self._revoked.add(sid, until)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zadd(REVOKED_SESSIONS_KEY, {sid: until})
                pipe.publish(FORGET_CHANNEL, SESSION_ANNOUNCEMENT + sid)
                # Bounded: this client has no read timeout (the subscriber needs none).
                await asyncio.wait_for(pipe.execute(), 1.0)
        except (RedisError, TimeoutError) as exc:
            logger.warning("other API processes not told session %s ended: %r", sid, exc)

    async def _read_revoked_sessions(self) -> None:
        now = time.time()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(REVOKED_SESSIONS_KEY, "-inf", now)
            pipe.zrange(REVOKED_SESSIONS_KEY, now, "+inf", byscore=True, withscores=True)
            _, revoked = await pipe.execute()
        for sid, until in revoked:
            self._revoked.add(sid.decode(), until)

    def _forget_here(self, user_id: uuid.UUID) -> None:
        self._forgets += 1
        self._principals.discard_where(lambda entry: entry[0].id == user_id)

    def _forget_everyone_here(self) -> None:
        self._forgets += 1
        self._principals.clear()

    def start_listening(self) -> None:
        """Start hearing other processes' announcements (call once the event loop runs)."""
        self._closing = asyncio.Event()
        self._listener = asyncio.create_task(self._listen())

    async def aclose(self) -> None:
        if self._listener is not None:
            # Asked to stop rather than cancelled: redis-py can swallow a cancellation that
            # arrives while it waits for a message.
            self._closing.set()
            await self._listener
        await self._redis.aclose()
        if self._userinfo is not None:
            await self._userinfo.aclose()

    async def _listen(self) -> None:
        """Forget the users other processes announce, and refuse the sessions they end.
        Whenever the subscription breaks, announcements may have been missed, so the cache
        starts over (and ended sessions are read again), and entries are trusted only briefly
        until the subscription is back."""
        while not self._closing.is_set():
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(FORGET_CHANNEL)
                    # Subscribed first: a session ended meanwhile is heard or read, or both.
                    await self._read_revoked_sessions()
                    self._forget_everyone_here()
                    self._hearing_announcements = True
                    await self._receive(pubsub)
            except (RedisError, OSError) as exc:
                logger.warning("not hearing identity announcements (%s); retrying", exc)
            finally:
                self._hearing_announcements = False
                self._forget_everyone_here()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), timeout=1.0)

    async def _receive(self, pubsub: Any) -> None:
        heard_at = time.monotonic()
        while not self._closing.is_set():
            message = await pubsub.get_message(timeout=POLL_SECONDS)
            if message is not None:
                heard_at = time.monotonic()
                if message["type"] == "message":
                    self._forget_announced(message["data"])
                continue
            silent = time.monotonic() - heard_at
            if silent > 2 * HEARTBEAT_SECONDS:
                raise ConnectionError("Redis stopped answering")
            if silent > HEARTBEAT_SECONDS:
                await pubsub.ping()  # answered by a "pong" message

    def _forget_announced(self, data: bytes) -> None:
        if data.startswith(SESSION_ANNOUNCEMENT.encode()):
            sid = data[len(SESSION_ANNOUNCEMENT) :].decode(errors="replace")
            self._revoked.add(sid, time.time() + self._revocation_seconds)
            return
        try:
            user_id = uuid.UUID(data.decode())
        except (UnicodeDecodeError, ValueError):
            logger.warning("ignored a malformed identity announcement: %r", data[:100])
            return
        self._forget_here(user_id)

    async def _load(
        self, subject: str, claims: dict[str, Any], token: str
    ) -> tuple[Principal, int | None]:
        keys: dict[str, Any]
        if self.provider == LOCAL_PROVIDER:
            lookup, keys = PRINCIPAL_BY_ID, {"subject": _uuid_or_none(subject)}
        else:
            lookup, keys = PRINCIPAL_BY_IDENTITY, {"provider": self.provider, "subject": subject}
        async with self.autocommit_sessions() as session:
            user: Any = (await run(session, lookup, keys)).one_or_none()
        if user is None and self.provider != LOCAL_PROVIDER:
            # Asked before the transaction opens: no connection is held across the HTTP call,
            # and nothing is written if the identity provider cannot answer.
            profile = await self._profile(token, claims)
            async with transaction(self.sessions) as session:
                user = await users.get_or_create_from_identity(
                    session,
                    provider=self.provider,
                    subject=subject,
                    email=profile.email,
                    name=profile.name or claims.get("username") or "Learner",
                    role=role_from_groups(claims.get(self.settings.auth_groups_claim)),
                    email_verified=profile.email_verified,
                )
        if user is None or user.erased_at is not None:
            raise Unauthorized("The account behind this token no longer exists.")
        valid_after = int(user.tokens_valid_after.timestamp()) if user.tokens_valid_after else None
        return Principal(id=user.id, email=user.email, name=user.name, role=user.role), valid_after

    async def _profile(self, token: str, claims: dict[str, Any]) -> UserInfo:
        """A new external user's email and name: from the token when it carries them (a
        pre-token-generation trigger can add them), otherwise from userInfo. Never invented."""
        email = claims.get("email")
        if isinstance(email, str) and email.strip():
            name = claims.get("name")
            return UserInfo(
                email=email,
                email_verified=str(claims.get("email_verified", "")).lower() == "true",
                name=name if isinstance(name, str) and name.strip() else None,
            )
        if self._userinfo is None:
            logger.error("a new user's token has no email and MOMENTUM_AUTH_USERINFO_URL is unset")
            raise ServiceUnavailable("This API cannot set up new accounts at the moment.")
        return await self._userinfo.fetch(token, claims)

    def issue_access_token(self, user: User, session_id: uuid.UUID | None = None) -> str:
        """An access token of the session ``session_id`` (a session of its own if None)."""
        if self.signing_key is None:
            raise RuntimeError("access tokens are issued by Cognito in this deployment")
        now = int(time.time())
        claims = {
            "iss": self.settings.auth_issuer,
            "aud": self.settings.auth_audience,
            "sub": str(user.id),
            "iat": now,
            "exp": now + self.settings.auth_access_token_ttl_seconds,
            "jti": uuid.uuid4().hex,
            "sid": str(session_id or uuid.uuid4()),
            "email": user.email,
            "name": user.name,
            "token_use": "access",
            self.settings.auth_groups_claim: [user.role.value],
        }
        return jwt.encode(
            claims,
            self.signing_key.private_key,
            algorithm="RS256",
            headers={"kid": self.signing_key.kid},
        )


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
