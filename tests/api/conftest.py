from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from momentum_api.app import create_app
from momentum_api.identity.service import Identity
from momentum_domain.config import Settings
from momentum_domain.users.models import Role, User
from momentum_domain.users.service import users
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

DEFAULT_PASSWORD = "correct horse battery staple"


@dataclass
class Account:
    user: User
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="session")
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture(scope="session")
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app, base_url="http://testserver.local") as client:
        yield client


MakeAccount = Callable[..., Awaitable[Account]]


@pytest.fixture
def make_account(
    app: Litestar, sessions: async_sessionmaker[AsyncSession], database_url: str
) -> MakeAccount:
    """Create a committed local user and an access token for it."""
    identity: Identity = app.state.identity
    counter = iter(range(1_000_000))

    async def make(role: Role = Role.FREE, email: str | None = None) -> Account:
        email = email or f"{role.value.lower()}{next(counter)}@example.com"
        async with sessions() as session, session.begin():
            user = await users.create_local(
                session,
                email=email,
                password=DEFAULT_PASSWORD,
                name=f"{role.value} user",
                role=role,
            )
        return Account(
            user=user, password=DEFAULT_PASSWORD, token=identity.issue_access_token(user)
        )

    return make


@pytest.fixture
async def learner(make_account: MakeAccount) -> Account:
    return await make_account(Role.FREE)


@pytest.fixture
async def admin_account(make_account: MakeAccount) -> Account:
    return await make_account(Role.ADMIN)
