"""Effects said during a unit of work run after its commit, in order, and never after a rollback;
a domain event reaches the handlers bound to the session's factory."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from momentum_domain.kit.db import create_sessionmaker
from momentum_domain.kit.unit_of_work import (
    Handlers,
    after_commit,
    bind_handlers,
    commit,
    dispatch,
    publish,
    transaction,
)


@dataclass(frozen=True)
class Happened:
    what: str


async def test_effects_run_after_the_commit_in_order(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    seen: list[str] = []

    async def sent() -> None:
        seen.append("async")

    async with sessions() as session:
        await session.execute(text("SELECT 1"))
        after_commit(session, lambda: seen.append("sync"))
        after_commit(session, sent)
        assert seen == []  # nothing before the commit
        await commit(session)
    assert seen == ["sync", "async"]


async def test_a_rollback_drops_the_effects(sessions: async_sessionmaker[AsyncSession]) -> None:
    seen: list[str] = []

    async def failing_unit_of_work() -> None:
        async with transaction(sessions) as session:
            after_commit(session, lambda: seen.append("never"))
            raise RuntimeError("the unit of work fails")

    with pytest.raises(RuntimeError):
        await failing_unit_of_work()
    async with transaction(sessions) as session:
        after_commit(session, lambda: seen.append("second"))
    assert seen == ["second"]


async def test_a_failing_effect_is_logged_and_the_rest_still_run(
    sessions: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def broken() -> None:
        raise ConnectionError("redis is away")

    async with transaction(sessions) as session:
        after_commit(session, broken)
        after_commit(session, lambda: seen.append("after"))
    assert seen == ["after"]
    assert "an effect after a commit failed" in caplog.text
    assert caplog.records[-1].levelno == logging.ERROR


async def test_published_events_reach_the_bound_handlers(engine: AsyncEngine) -> None:
    received: list[Happened] = []
    other: list[object] = []

    async def record(event: Happened) -> None:
        received.append(event)

    handlers = Handlers()
    handlers.on(Happened, record)
    handlers.on(uuid.UUID, other.append)
    sessions = create_sessionmaker(engine)
    bind_handlers(sessions, handlers)
    async with transaction(sessions) as session:
        publish(session, Happened("one"))
        assert received == []
    assert received == [Happened("one")]
    assert other == []
    # A session from a factory without handlers publishes to nobody.
    async with transaction(create_sessionmaker(engine)) as session:
        publish(session, Happened("unheard"))
    assert received == [Happened("one")]


async def test_a_dispatched_event_is_handled_within_the_unit_of_work(engine: AsyncEngine) -> None:
    """Handlers bound with ``within`` act at once, in the publisher's transaction (a rollback
    undoes what they wrote); those bound with ``on`` still wait for the commit."""
    seen: list[str] = []

    async def within(session: AsyncSession, event: Happened) -> None:
        seen.append(f"within {event.what}")
        await session.execute(text("CREATE TEMPORARY TABLE reacted (what text)"))

    handlers = Handlers()
    handlers.within(Happened, within)
    handlers.on(Happened, lambda event: seen.append(f"after {event.what}"))
    sessions = create_sessionmaker(engine)
    bind_handlers(sessions, handlers)

    async def rolled_back() -> None:
        async with transaction(sessions) as session:
            await dispatch(session, Happened("lost"))
            raise RuntimeError("the unit of work fails")

    with pytest.raises(RuntimeError):
        await rolled_back()
    assert seen == ["within lost"]
    async with transaction(sessions) as session:
        await dispatch(session, Happened("kept"))
        assert seen == ["within lost", "within kept"]
        # The reaction's write is part of this transaction.
        assert await session.scalar(text("SELECT count(*) FROM reacted")) == 0
    assert seen == ["within lost", "within kept", "after kept"]


async def test_a_cancelled_caller_drops_the_rest_and_says_so(
    sessions: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    async def cancelled() -> None:
        raise asyncio.CancelledError

    async def later() -> None:
        ran.append("later")

    async def unit_of_work() -> None:
        async with transaction(sessions) as session:
            after_commit(session, cancelled)
            after_commit(session, later)

    with pytest.raises(asyncio.CancelledError):
        await unit_of_work()
    assert ran == []
    assert "1 effects after a commit dropped: the caller was cancelled" in caplog.text
