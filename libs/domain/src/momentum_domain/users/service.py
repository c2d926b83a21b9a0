"""Accounts: local credentials, identities from an external provider, roles."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.audit.service import RequestOrigin, audit
from momentum_domain.errors import Conflict, NotFound, Unauthorized
from momentum_domain.kit.pagination import Paged, PageRequest, paginate
from momentum_domain.kit.unit_of_work import commit, publish
from momentum_domain.notifications.service import Recipient, notifications
from momentum_domain.users.events import UserChanged
from momentum_domain.users.models import Role, User
from momentum_domain.users.passwords import check_new_password
from momentum_domain.users.profile import (
    Preferences,
    Profile,
    ProfileChanges,
    apply,
    read_preferences,
    write_preferences,
)

LOCAL_PROVIDER = "local"
_hasher = PasswordHasher()
# Verified against when the account does not exist, so timing does not reveal which emails exist.
_DUMMY_HASH = _hasher.hash("momentum-timing-equaliser")


# What sign-up emails: kind -> (subject, body).
WELCOME, ACCOUNT_EXISTS = "welcome", "account_exists"
ACCOUNT_EMAILS = {
    WELCOME: (
        "Welcome to Momentum",
        "Your Momentum account is ready: sign in with this email address and the password you "
        "chose.",
    ),
    ACCOUNT_EXISTS: (
        "Someone tried to sign up to Momentum with your email",
        "Somebody asked to create a Momentum account with this email address, which already "
        "has one. If it was you, sign in with your password instead. If it was not, you need "
        "not do anything: your account has not changed.",
    ),
}


def normalize_email(email: str) -> str:
    return email.strip().lower()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@dataclass(frozen=True, slots=True)
class SignedUp:
    user: User
    created: bool  # False: the email had an account, whose owner was told


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

    async def sign_up(
        self, session: AsyncSession, *, email: str, password: str, name: str,
        origin: RequestOrigin,
    ) -> SignedUp:  # fmt: skip
        """Create a local account; when the email already has one, tell its owner instead. The
        caller answers both alike (and both cost a password hash and an email), so sign-up
        does not reveal which emails have accounts. The password must pass the policy of
        momentum_domain.users.passwords (400 naming the field)."""
        signed_up = await self._sign_up(session, email=email, password=password, name=name)
        await audit.record(
            session,
            actor_id=signed_up.user.id if signed_up.created else None,
            action="user.sign_up" if signed_up.created else "user.sign_up_existing_email",
            resource_type="user",
            resource_id=signed_up.user.id,
            origin=origin,
        )
        await commit(session)
        return signed_up

    async def _sign_up(
        self, session: AsyncSession, *, email: str, password: str, name: str
    ) -> SignedUp:
        email = normalize_email(email)
        check_new_password(password, email=email, name=name)
        try:
            user = await self.create_local(session, email=email, password=password, name=name)
        except Conflict:
            existing = await self.get_by_email(session, email)
            assert existing is not None  # emails are never deleted, only erased in place
            # One such notice a day at most: sign-up must not become a way to flood an inbox.
            if not await notifications.emailed_within(
                session, existing.id, ACCOUNT_EXISTS, timedelta(days=1)
            ):
                self._email(session, existing, ACCOUNT_EXISTS)
            return SignedUp(existing, created=False)
        self._email(session, user, WELCOME)
        return SignedUp(user, created=True)

    @staticmethod
    def _email(session: AsyncSession, user: User, kind: str) -> None:
        subject, body = ACCOUNT_EMAILS[kind]
        notifications.email(
            session, Recipient(user.id, user.email), subject=subject, body=body, kind=kind
        )

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
        self, session: AsyncSession, *, q: str | None, role: Role | None, page: PageRequest
    ) -> Paged[User]:
        """Users not erased, newest first; ``q`` matches part of the email or the name."""
        stmt = select(User).where(User.erased_at.is_(None))
        if q:
            pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            stmt = stmt.where(User.email.ilike(pattern) | User.name.ilike(pattern))
        if role:
            stmt = stmt.where(User.role == role)
        return await paginate(session, stmt, page, [User.created_at.desc(), User.id])

    async def change_role(
        self, session: AsyncSession, user_id: uuid.UUID, role: Role, *, actor_id: uuid.UUID,
        origin: RequestOrigin,
    ) -> User:  # fmt: skip
        """Change a user's role (an admin's use case); the last administrator cannot be
        demoted. Every process forgets what it remembered of the user once this commits."""
        user = await session.get(User, user_id)
        if user is None or user.erased_at is not None:
            raise NotFound("No such user.")
        previous = user.role
        if role is not Role.ADMIN:
            await self.ensure_another_admin(session, user.id)
        user.role = role
        await session.flush()
        await audit.record(
            session, actor_id=actor_id, action="user.role_change", resource_type="user",
            resource_id=user.id, origin=origin,
            details={"from": previous.value, "to": user.role.value},
        )  # fmt: skip
        publish(session, UserChanged(user.id))
        await commit(session)
        return user

    async def profile(self, session: AsyncSession, user_id: uuid.UUID) -> Profile:
        user = await session.get(User, user_id)
        if user is None or user.erased_at is not None:
            raise Unauthorized("The account behind this token no longer exists.")
        return _profile(user, read_preferences(user.preferences))

    async def preferences(self, session: AsyncSession, user_id: uuid.UUID) -> Preferences:
        """The user's preferences (their defaults when the user is gone): what counts days
        reads the learner's time zone here."""
        document = await session.scalar(select(User.preferences).where(User.id == user_id))
        return read_preferences(document)

    async def update_profile(
        self, session: AsyncSession, user_id: uuid.UUID, changes: ProfileChanges, *,
        actor_id: uuid.UUID, origin: RequestOrigin,
    ) -> Profile:  # fmt: skip
        """Change the fields ``changes`` sends; a value that may not be stored is a 422 naming
        its field, and then nothing changes."""
        user = await session.get(User, user_id)
        if user is None or user.erased_at is not None:
            raise Unauthorized("The account behind this token no longer exists.")
        preferences = apply(read_preferences(user.preferences), changes)
        if changes.name is not None:
            user.name = changes.name.strip()
        user.preferences = write_preferences(preferences)
        await session.flush()
        await audit.record(
            session, actor_id=actor_id, action="user.profile_update", resource_type="user",
            resource_id=user.id, origin=origin, details={"fields": sorted(changes.sent())},
        )  # fmt: skip
        publish(session, UserChanged(user.id))
        await commit(session)
        return _profile(user, preferences)

    async def ensure_another_admin(self, session: AsyncSession, user_id: uuid.UUID) -> None:
        """Refuse (409) to let the last active administrator stop being one, whichever way
        (demotion, erasure): call it in the transaction that makes the change. Every active
        admin row is locked, in id order, until that transaction ends, so two admins demoting
        or erasing each other at once cannot both pass, nor deadlock."""
        admins = list(
            await session.scalars(
                select(User.id)
                .where(User.role == Role.ADMIN, User.erased_at.is_(None))
                .order_by(User.id)
                .with_for_update()
            )
        )
        if admins == [user_id]:
            raise Conflict("This is the last administrator; promote another user first.")


def _profile(user: User, preferences: Preferences) -> Profile:
    return Profile(user.id, user.email, user.name, user.role, user.email_verified, preferences)


users = UserService()
