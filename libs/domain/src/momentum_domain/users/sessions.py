"""Sign-in sessions of local accounts: a sign-in starts one, each refresh rotates its refresh
token, a sign-out or a replayed refresh token ends it. Ending a session revokes its refresh
tokens here and announces ``SessionEnded``, so the API refuses its access tokens too."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.audit.service import RequestOrigin, audit
from momentum_domain.errors import Unauthorized
from momentum_domain.kit.unit_of_work import commit, publish
from momentum_domain.users.events import SessionEnded
from momentum_domain.users.models import RefreshToken, User
from momentum_domain.users.service import users


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A session's user and its new refresh token (the caller issues the access token)."""

    user: User
    session_id: uuid.UUID
    refresh_token: str
    refresh_expires_at: datetime


class RefreshTokenReused(Unauthorized):
    """A refresh token presented again after it was used or revoked."""

    def __init__(self, session_id: uuid.UUID) -> None:
        super().__init__("The refresh token is invalid, expired or already used.")
        self.session_id = session_id


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionService:
    async def sign_in(
        self, session: AsyncSession, *, email: str, password: str, origin: RequestOrigin,
        ttl: timedelta,
    ) -> SignedIn:  # fmt: skip
        """A new session for the local account whose credentials these are (Unauthorized
        otherwise)."""
        user = await users.authenticate(session, email=email, password=password)
        await audit.record(
            session, actor_id=user.id, action="user.sign_in", resource_type="user",
            resource_id=user.id, origin=origin,
        )  # fmt: skip
        signed_in = await self._issue(session, user, uuid.uuid4(), origin, ttl)
        await commit(session)
        return signed_in

    async def record_failed_sign_in(
        self, session: AsyncSession, *, email: str, origin: RequestOrigin
    ) -> None:
        """Audit a failed sign-in, in a session of its own (the request's rolls back)."""
        await audit.record(
            session, actor_id=None, action="user.sign_in_failed", resource_type="user",
            resource_id=None, origin=origin, details={"email": email},
        )  # fmt: skip
        await commit(session)

    async def refresh(
        self, session: AsyncSession, token: str, *, origin: RequestOrigin, ttl: timedelta
    ) -> SignedIn:
        """Revoke a live refresh token and issue the next of its session (rotation: each
        token works once). A token already used or revoked raises RefreshTokenReused: someone
        holds a copy, so the caller ends its whole session (end_reused_session)."""
        now = datetime.now(UTC)
        digest = _digest(token)
        redeemed = (
            await session.execute(
                update(RefreshToken)
                .where(
                    RefreshToken.token_hash == digest,
                    RefreshToken.revoked_at.is_(None),
                    RefreshToken.expires_at > now,
                )
                .values(revoked_at=now)
                .returning(RefreshToken.user_id, RefreshToken.session_id)
            )
        ).one_or_none()
        if redeemed is None:
            spent = await session.scalar(
                select(RefreshToken.session_id).where(
                    RefreshToken.token_hash == digest, RefreshToken.revoked_at.is_not(None)
                )
            )
            if spent is not None:
                raise RefreshTokenReused(spent)
        user = await session.get(User, redeemed.user_id) if redeemed else None
        if redeemed is None or user is None or user.erased_at is not None:
            raise Unauthorized("The refresh token is invalid, expired or already used.")
        signed_in = await self._issue(session, user, redeemed.session_id, origin, ttl)
        await commit(session)
        return signed_in

    async def end_reused_session(
        self, session: AsyncSession, session_id: uuid.UUID, *, origin: RequestOrigin
    ) -> None:
        """End a session whose spent refresh token came back, in a session of its own (the
        request's rolls back). A session already over (signed out, or ended like this before)
        is left as it is."""
        if await self._revoke(session, session_id):
            await audit.record(
                session, actor_id=None, action="user.refresh_token_reused",
                resource_type="session", resource_id=session_id, origin=origin,
            )  # fmt: skip
            publish(session, SessionEnded(session_id))
        await commit(session)

    async def sign_out(
        self, session: AsyncSession, user_id: uuid.UUID, *, refresh_token: str,
        access_session_id: uuid.UUID | None, origin: RequestOrigin,
    ) -> None:  # fmt: skip
        """End the session the refresh token belongs to and the one of the access token used
        (``access_session_id``): every token of them stops working."""
        user = await session.get(User, user_id)
        if user is None:
            return
        of_refresh_token = await session.scalar(
            select(RefreshToken.session_id).where(
                RefreshToken.token_hash == _digest(refresh_token), RefreshToken.user_id == user.id
            )
        )
        for session_id in {of_refresh_token, access_session_id} - {None}:
            assert session_id is not None
            await self._revoke(session, session_id)
            publish(session, SessionEnded(session_id))
        await audit.record(
            session, actor_id=user.id, action="user.sign_out", resource_type="user",
            resource_id=user.id, origin=origin,
        )  # fmt: skip
        await commit(session)

    async def _issue(
        self, session: AsyncSession, user: User, session_id: uuid.UUID, origin: RequestOrigin,
        ttl: timedelta,
    ) -> SignedIn:  # fmt: skip
        token = secrets.token_urlsafe(48)
        expires_at = datetime.now(UTC) + ttl
        session.add(
            RefreshToken(
                user_id=user.id,
                session_id=session_id,
                token_hash=_digest(token),
                expires_at=expires_at,
                ip=origin.ip,
                user_agent=origin.user_agent,
            )
        )
        await session.flush()
        return SignedIn(user, session_id, token, expires_at)

    async def _revoke(self, session: AsyncSession, session_id: uuid.UUID) -> int:
        """Revoke every refresh token of a session; return how many were still live."""
        revoked = await session.scalars(
            update(RefreshToken)
            .where(RefreshToken.session_id == session_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
            .returning(RefreshToken.id)
        )
        return len(revoked.all())


user_sessions = SessionService()

__all__ = ["RefreshTokenReused", "SessionService", "SignedIn", "user_sessions"]
