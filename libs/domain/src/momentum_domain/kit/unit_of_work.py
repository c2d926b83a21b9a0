"""How a unit of work ends, in one place.

A service fetches, changes, audits, and says what must follow the commit: an effect it knows
itself (``after_commit``: a counter, an audit line for the sink) or a domain event whose
consequences belong to the process (``publish``: the API invalidates its caches, forgets a
principal; any process enqueues the steps a job is ready for). Everything said is held on the
session and runs once its transaction has committed, in order; a rollback drops it, so no job
sees a row that was rolled back and no cache forgets what still stands (Polar's
``JobQueueManager``, generalised).

A domain whose rule must act in the same unit of work as another's change (a completed lesson
awards badges before the learner hears back) reacts to an event without the publisher importing
it: ``Handlers.within`` binds the reaction, and ``dispatch`` runs it at once, in the
publisher's transaction, before the after-commit handlers are scheduled.

A plain function runs inside the commit, whoever commits (it must not block: a counter, a line
handed to a queue). A coroutine function is called there (which runs none of it) and awaited
by whoever ends the unit of work: ``commit`` (a service), ``transaction`` (a worker's block)
or, in the API, the request's end; one left unawaited is a bug Python reports ("coroutine ...
was never awaited"). An effect that fails is logged; the commit it follows stands. Savepoints
are not tracked (SQLAlchemy reports a released savepoint as a commit): the platform uses none.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)

Effect = Callable[[], Awaitable[None] | None]
E = TypeVar("E")
Reaction = Callable[[AsyncSession, Any], Awaitable[object]]

_PENDING = "momentum.effects.pending"
_DUE = "momentum.effects.due"
_HANDLERS = "momentum.effects.handlers"


class Handlers:
    """What this process does after a commit that published an event of a given type."""

    def __init__(self) -> None:
        self._by_type: defaultdict[type, list[Callable[[Any], Awaitable[None] | None]]] = (
            defaultdict(list)
        )
        self._within_by_type: defaultdict[type, list[Reaction]] = defaultdict(list)

    def on(self, event_type: type[E], handler: Callable[[E], Awaitable[None] | None]) -> None:
        self._by_type[event_type].append(handler)

    def within(
        self, event_type: type[E], handler: Callable[[AsyncSession, E], Awaitable[object]]
    ) -> None:
        """``handler(session, event)`` runs in the unit of work that dispatches the event, on its
        session, before it commits: in a transaction, what it writes stands or falls with the
        publisher's change; on an autocommit session each statement stands on its own."""
        self._within_by_type[event_type].append(handler)

    def of(self, event: object) -> list[Callable[[Any], Awaitable[None] | None]]:
        return self._by_type.get(type(event), [])

    def within_of(self, event: object) -> list[Reaction]:
        return self._within_by_type.get(type(event), [])


def bind_session_info(sessions: async_sessionmaker[AsyncSession], key: str, value: object) -> None:
    """Give every session from ``sessions`` ``info[key] = value`` (keeping what it had)."""
    info = dict(sessions.kw.get("info") or {})
    info[key] = value
    sessions.configure(info=info)


def bind_handlers(sessions: async_sessionmaker[AsyncSession], handlers: Handlers) -> None:
    bind_session_info(sessions, _HANDLERS, handlers)


def after_commit(session: AsyncSession | Session, effect: Effect) -> None:
    """Run ``effect`` once the session's transaction commits; never if it rolls back."""
    session.info.setdefault(_PENDING, []).append(effect)


def publish(session: AsyncSession | Session, event_: object) -> None:
    """Announce ``event_``: the handlers bound to the session's factory run after the commit."""
    handlers: Handlers | None = session.info.get(_HANDLERS)
    for handler in handlers.of(event_) if handlers else ():
        after_commit(session, functools.partial(handler, event_))


async def dispatch(session: AsyncSession, event_: object) -> None:
    """Announce ``event_`` to the handlers that take part in this unit of work (they run now, in
    order, in its transaction; an error is the unit of work's), then ``publish`` it."""
    handlers: Handlers | None = session.info.get(_HANDLERS)
    for handler in handlers.within_of(event_) if handlers else ():
        await handler(session, event_)
    publish(session, event_)


async def run_after_commit(session: AsyncSession | Session) -> None:
    """Await the effects of the session's committed transactions, in the order they were said."""
    due: list[Awaitable[None]] = session.info.pop(_DUE, [])
    for position, effect in enumerate(due):
        try:
            await effect
        except Exception:
            logger.exception("an effect after a commit failed; the commit stands")
        except BaseException:  # cancelled (a stopping worker, a client gone): say what is lost
            left = due[position + 1 :]
            for never in left:
                close = getattr(never, "close", None)
                if close is not None:
                    close()
            if left:
                logger.error(
                    "%d effects after a commit dropped: the caller was cancelled", len(left)
                )
            raise


async def commit(session: AsyncSession) -> None:
    await session.commit()
    await run_after_commit(session)


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose work commits on success (then its effects run) and rolls back on any
    error (its effects are dropped)."""
    async with sessions() as session:
        async with session.begin():
            yield session
        await run_after_commit(session)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    for effect in session.info.pop(_PENDING, ()):
        try:
            result = effect()
        except Exception:
            logger.exception("an effect after a commit failed; the commit stands")
            continue
        if inspect.isawaitable(result):
            session.info.setdefault(_DUE, []).append(result)


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)


__all__ = [
    "Handlers",
    "after_commit",
    "bind_handlers",
    "bind_session_info",
    "commit",
    "dispatch",
    "publish",
    "run_after_commit",
    "transaction",
]
