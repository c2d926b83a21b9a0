"""The request's unit of work. The request's session commits when the response is a success and
rolls back otherwise (advanced-alchemy's autocommit handler); then the effects its committed
transactions said must follow (momentum_domain.kit.unit_of_work) run, before the client hears the
answer: a client that reads after a write never sees a cache the write should have cleared."""

from __future__ import annotations

import inspect

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from advanced_alchemy.extensions.litestar._utils import get_aa_scope_state
from litestar.types import Message, Scope
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.kit.unit_of_work import run_after_commit


def run_effects_after_requests(config: SQLAlchemyAsyncConfig) -> None:
    """Make ``config``'s end-of-request handler run the committed effects after it."""
    commit_or_roll_back = config.before_send_handler
    assert callable(commit_or_roll_back)  # made from "autocommit" by the config
    key = config.session_scope_key  # unique per config: every app in a process has its own

    async def end_unit_of_work(message: Message, scope: Scope) -> None:
        session: AsyncSession | None = get_aa_scope_state(scope, key)
        result = commit_or_roll_back(message, scope)
        if inspect.isawaitable(result):
            await result
        if session is not None and message["type"] == "http.response.start":
            await run_after_commit(session)

    config.before_send_handler = end_unit_of_work
