"""One page helper for every list: the rows, the total, and a true total past the end."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.catalog.models import Category
from momentum_domain.kit.pagination import PageRequest, paginate, paginate_rows


async def _categories(db: AsyncSession, count: int) -> list[Category]:
    rows = [Category(slug=f"p-{i}", name=f"Paged {i}", sort_order=i) for i in range(count)]
    db.add_all(rows)
    await db.flush()
    return rows


async def test_a_page_and_the_total(db: AsyncSession) -> None:
    await _categories(db, 5)
    stmt = select(Category).where(Category.slug.like("p-%"))
    page = await paginate(db, stmt, PageRequest(limit=2, offset=2), [Category.sort_order])
    assert [category.slug for category in page.items] == ["p-2", "p-3"]
    assert page.total == 5


async def test_past_the_end_still_counts(db: AsyncSession) -> None:
    await _categories(db, 3)
    # No WHERE clause: the count must still read FROM the table.
    page = await paginate(db, select(Category), PageRequest(limit=10, offset=50), [Category.id])
    assert page.items == []
    assert page.total == await db.scalar(select(func.count()).select_from(Category))
    assert page.total >= 3


async def test_rows_keep_every_selected_column(db: AsyncSession) -> None:
    await _categories(db, 2)
    stmt = select(Category.slug, Category.sort_order).where(Category.slug.like("p-%"))
    page = await paginate_rows(db, stmt, PageRequest(limit=1), [Category.sort_order.desc()])
    assert page.items == [("p-1", 1)]
    assert page.total == 2
