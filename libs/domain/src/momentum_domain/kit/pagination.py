"""One way to read a page: the rows and the total matching, in one round trip (a window count
beside each row), and a second query only when the page is past the end."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")
# A statement selecting any number of columns.
AnySelect = Select[*tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Paged(Generic[T]):
    items: list[T]
    total: int


async def paginate_rows(
    session: AsyncSession,
    stmt: AnySelect,
    page: PageRequest,
    order_by: Sequence[ColumnElement[Any] | Any],
) -> Paged[tuple[Any, ...]]:
    """A page of ``stmt``'s rows (all its columns) in ``order_by`` order (end it with a unique
    column, so pages never overlap) and the total."""
    paged = stmt.add_columns(func.count().over().label("_total"))
    rows = (
        await session.execute(paged.order_by(*order_by).limit(page.limit).offset(page.offset))
    ).all()
    if not rows:
        total = 0
        if page.offset:
            counted = select(func.count()).select_from(stmt.order_by(None).subquery())
            total = int(await session.scalar(counted) or 0)
        return Paged([], total)
    width = len(rows[0]) - 1
    return Paged([tuple(row[:width]) for row in rows], int(rows[0][width]))


async def paginate(
    session: AsyncSession,
    stmt: Select[Any],
    page: PageRequest,
    order_by: Sequence[ColumnElement[Any] | Any],
) -> Paged[Any]:
    """Like ``paginate_rows`` for a statement selecting one entity: the entities themselves."""
    rows = await paginate_rows(session, stmt, page, order_by)
    return Paged([row[0] for row in rows.items], rows.total)


async def fetch_page(
    session: AsyncSession,
    stmt: Select[Any],
    page: PageRequest,
    order_by: Sequence[ColumnElement[Any] | Any],
) -> list[Any]:
    """A page of ``stmt``'s entities without the total: for a list whose total nobody reads,
    over a table that only grows (counting it would read all of it)."""
    result = await session.scalars(stmt.order_by(*order_by).limit(page.limit).offset(page.offset))
    return list(result)


__all__ = ["PageRequest", "Paged", "fetch_page", "paginate", "paginate_rows"]
