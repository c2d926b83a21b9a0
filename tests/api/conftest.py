from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_api.app import create_app
from momentum_api.identity.service import Identity
from momentum_domain.catalog.authoring import insert_course, insert_lesson, transition
from momentum_domain.catalog.inputs import NewCourse, NewLesson
from momentum_domain.catalog.models import Category, Course, CourseStatus
from momentum_domain.config import Settings
from momentum_domain.users.models import Role, User
from momentum_domain.users.service import users

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


class AppClient(httpx.AsyncClient):
    """An HTTP client bound to one app (``client.app``), through ASGI in this event loop."""

    def __init__(self, app: Litestar) -> None:
        super().__init__(transport=httpx.ASGITransport(app=app), base_url="http://testserver.local")
        self.app = app


@asynccontextmanager
async def serve(app: Litestar) -> AsyncIterator[AppClient]:
    """An HTTP client for the app, running in this event loop: requests gathered concurrently
    really run concurrently. (Litestar's AsyncTestClient runs each request to completion on a
    thread of its own, blocking the test's loop, so concurrency tests through it could not fail.)
    The app's lifespan runs in a task of its own, as a server runs it."""
    started, stopping = asyncio.Event(), asyncio.Event()

    async def lifespan() -> None:
        async with app.lifespan():
            started.set()
            await stopping.wait()

    server = asyncio.create_task(lifespan())
    ready = asyncio.create_task(started.wait())
    await asyncio.wait({server, ready}, return_when=asyncio.FIRST_COMPLETED)
    if server.done():
        server.result()  # start-up failed: raise its error
    try:
        async with AppClient(app) as client:
            yield client
    finally:
        stopping.set()
        await server


@pytest.fixture(scope="session")
async def client(app: Litestar) -> AsyncIterator[AppClient]:
    async with serve(app) as client:
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


MakeCourse = Callable[..., Awaitable[Course]]


@pytest.fixture
def make_course(sessions: async_sessionmaker[AsyncSession], database_url: str) -> MakeCourse:
    async def make(
        title: str = "Intro to Cooking",
        *,
        days: int = 7,
        status: CourseStatus = CourseStatus.PUBLISHED,
        lessons: int | None = None,
        category: str | None = "technology",
        **fields: Any,
    ) -> Course:
        async with sessions() as session, session.begin():
            category_id = (
                await session.scalar(select(Category.id).where(Category.slug == category))
                if category
                else None
            )
            course = await insert_course(
                session,
                NewCourse(title=title, duration_days=days, category_id=category_id, **fields),
                created_by=None,
            )
            for day in range(1, (days if lessons is None else lessons) + 1):
                await insert_lesson(
                    session,
                    course,
                    NewLesson(
                        day_number=day,
                        title=f"{title}, day {day}",
                        content_markdown=f"# Day {day}\n\nPractice **{title.lower()}**.",
                    ),
                )
            if status is not CourseStatus.DRAFT:
                await transition(session, course, CourseStatus.PUBLISHED)
            if status is CourseStatus.ARCHIVED:
                await transition(session, course, CourseStatus.ARCHIVED)
        return course

    return make
