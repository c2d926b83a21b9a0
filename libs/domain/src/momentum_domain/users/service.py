"""Accounts: local credentials, identities from an external provider, refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.errors import Conflict, Unauthorized
from momentum_domain.users.models import RefreshToken, Role, User

LOCAL_PROVIDER = "local"
_hasher = PasswordHasher()
# Verified against when the account does not exist, so timing does not reveal which emails exist.
_DUMMY_HASH = _hasher.hash("momentum-timing-equaliser")


def normalize_email(email: str) -> str:
    return email.strip().lower()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedRefreshToken:
    token: str
    expires_at: datetime


class UserService:
    async def get(self, session: AsyncSession, user_id: uuid.UUID) -> User | None:
        return await session.get(User, user_id)

    async def get_by_email(self, session: AsyncSession, email: str) -> User | None:
        return await session.scalar(select(User).where(User.email == normalize_email(email)))

    async def create_local(
        self, session: AsyncSession, *, email: str, password: str, name: str, role: Role = Role.FREE
    ) -> User:
        email = normalize_email(email)
        user_id = uuid.uuid4()
        # ON CONFLICT keeps a duplicate sign-up from aborting the surrounding transaction.
        inserted = await session.scalar(
            insert(User)
            .values(
                id=user_id,
                email=email,
                name=name.strip(),
                role=role,
                identity_provider=LOCAL_PROVIDER,
                subject=str(user_id),
                password_hash=hash_password(password),
                preferences={},
                demographics={},
            )
            .on_conflict_do_nothing(index_elements=[User.email])
            .returning(User.id)
        )
        if inserted is None:
            raise Conflict("An account with this email already exists.")
        user = await session.get(User, user_id)
        assert user is not None
        return user

    async def authenticate(self, session: AsyncSession, *, email: str, password: str) -> User:
        """Return the local user whose credentials these are, or raise Unauthorized."""
        user = await self.get_by_email(session, email)
        stored = user.password_hash if user and user.erased_at is None else None
        try:
            _hasher.verify(stored or _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            stored = None
        if user is None or stored is None:
            raise Unauthorized("Email or password is incorrect.")
        if _hasher.check_needs_rehash(stored):
            user.password_hash = hash_password(password)
        user.last_login_at = datetime.now(UTC)
        return user

    async def get_or_create_from_identity(
        self,
        session: AsyncSession,
        *,
        provider: str,
        subject: str,
        email: str,
        name: str,
        role: Role,
        email_verified: bool,
    ) -> User:
        """The user behind an external identity, created the first time it is seen. The role
        comes from the identity provider then; afterwards the database is authoritative."""
        found = await session.scalar(
            select(User).where(User.identity_provider == provider, User.subject == subject)
        )
        if found is not None:
            return found
        await session.execute(
            insert(User)
            .values(
                id=uuid.uuid4(),
                email=normalize_email(email),
                name=name,
                role=role,
                identity_provider=provider,
                subject=subject,
                email_verified=email_verified,
                preferences={},
                demographics={},
            )
            .on_conflict_do_nothing()
        )
        user = await session.scalar(
            select(User).where(User.identity_provider == provider, User.subject == subject)
        )
        if user is None:
            raise Conflict("This email already belongs to an account from another sign-in method.")
        return user

    async def search(
        self,
        session: AsyncSession,
        *,
        q: str | None,
        role: Role | None,
        limit: int,
        offset: int,
    ) -> tuple[list[User], int]:
        stmt = select(User, func.count().over()).where(User.erased_at.is_(None))
        if q:
            pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            stmt = stmt.where(User.email.ilike(pattern) | User.name.ilike(pattern))
        if role:
            stmt = stmt.where(User.role == role)
        rows = (
            await session.execute(
                stmt.order_by(User.created_at.desc(), User.id).limit(limit).offset(offset)
            )
        ).all()
        return [row[0] for row in rows], int(rows[0][1]) if rows else 0

    async def change_role(self, session: AsyncSession, user: User, role: Role) -> User:
        """Change a user's role; the last administrator cannot be demoted."""
        if user.role is Role.ADMIN and role is not Role.ADMIN:
            # Lock every admin row so two concurrent demotions cannot both pass the check.
            admins = list(
                await session.scalars(
                    select(User.id)
                    .where(User.role == Role.ADMIN, User.erased_at.is_(None))
                    .with_for_update()
                )
            )
            if admins == [user.id]:
                raise Conflict("This is the last administrator; promote another user first.")
        user.role = role
        await session.flush()
        return user

    async def issue_refresh_token(
        self,
        session: AsyncSession,
        user: User,
        *,
        ttl: timedelta,
        ip: str | None,
        user_agent: str | None,
    ) -> IssuedRefreshToken:
        token = secrets.token_urlsafe(48)
        expires_at = datetime.now(UTC) + ttl
        session.add(
            RefreshToken(
                user_id=user.id,
                token_hash=_digest(token),
                expires_at=expires_at,
                ip=ip,
                user_agent=user_agent,
            )
        )
        await session.flush()
        return IssuedRefreshToken(token, expires_at)

    async def redeem_refresh_token(self, session: AsyncSession, token: str) -> User:
        """Revoke a live refresh token and return its user (rotation: each token works once)."""
        now = datetime.now(UTC)
        user_id = await session.scalar(
            update(RefreshToken)
            .where(
                RefreshToken.token_hash == _digest(token),
                RefreshToken.revoked_at.is_(None),
                RefreshToken.expires_at > now,
            )
            .values(revoked_at=now)
            .returning(RefreshToken.user_id)
        )
        user = await session.get(User, user_id) if user_id else None
        if user is None or user.erased_at is not None:
            raise Unauthorized("The refresh token is invalid, expired or already used.")
        return user

    async def revoke_refresh_token(self, session: AsyncSession, user: User, token: str) -> None:
        await session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.token_hash == _digest(token),
                RefreshToken.user_id == user.id,
                RefreshToken.revoked_at.is_(None),
            )
            .values(revoked_at=datetime.now(UTC))
        )


users = UserService()
