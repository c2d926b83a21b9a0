"""Counts added with ``add_after_commit`` reach the meter only when the transaction commits:
a rolled-back (and retried) transaction counts nothing."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from momentum_domain import metric_names
from momentum_domain.kit.telemetry import add_after_commit, create_counter


class Rollback(Exception):
    pass


def _total(reader: InMemoryMetricReader) -> float:
    data = reader.get_metrics_data()
    if data is None:
        return 0
    return sum(
        point.value
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
    )


async def test_counts_are_added_when_the_transaction_commits_and_only_then(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    reader = InMemoryMetricReader()
    counter = create_counter(
        MeterProvider(metric_readers=[reader]).get_meter("tests"),
        metric_names.GENERATION_JOBS_FINISHED,
    )

    async with sessions() as session:

        async def rolled_back() -> None:
            async with session.begin():
                await session.execute(text("SELECT 1"))
                add_after_commit(session, counter, 1)
                raise Rollback

        with pytest.raises(Rollback):
            await rolled_back()
        assert _total(reader) == 0

        # The same session's next transaction: only its own count, when it commits.
        async with session.begin():
            add_after_commit(session, counter, 2)
            assert _total(reader) == 0
        assert _total(reader) == 2
        async with session.begin():
            pass
    assert _total(reader) == 2
