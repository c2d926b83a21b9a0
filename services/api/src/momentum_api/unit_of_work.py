"""The request's unit of work. The request's session commits when the response is a success and
rolls back otherwise (advanced-alchemy's handler); then the effects its committed transactions
said must follow (momentum_domain.unit_of_work) run, before the client hears the answer: a
client that reads after a write never sees a cache the write should have cleared."""

from __future__ import annotations

from advanced_alchemy.extensions.litestar._utils import get_aa_scope_state
from advanced_alchemy.extensions.litestar.plugins.init.config.asyncio import (
    autocommit_handler_maker,
)
from advanced_alchemy.extensions.litestar.plugins.init.config.common import SESSION_SCOPE_KEY
from litestar.types import Message, Scope
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.unit_of_work import run_after_commit

_commit_or_roll_back = autocommit_handler_maker()


async def end_unit_of_work(message: Message, scope: Scope) -> None:
    session: AsyncSession | None = get_aa_scope_state(scope, SESSION_SCOPE_KEY)
    await _commit_or_roll_back(message, scope)
    if session is not None and message["type"] == "http.response.start":
        await run_after_commit(session)
