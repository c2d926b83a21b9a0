"""A real Dramatiq worker on the real Redis broker, in this process, with a model provider the
test controls (the offline provider, wrapped to misbehave or to record concurrency), and the API
queueing its jobs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from momentum_api.app import create_app
from momentum_domain.config import Settings
from momentum_generator.llm import (
    create_llm_provider,
)
from momentum_generator.worker import start_worker, stop_worker
from tests.fixtures.app import serve
from tests.fixtures.generation import ProbeProvider


@pytest.fixture
def probe(settings: Settings) -> ProbeProvider:
    # The offline provider inside the production wrapper: same spans, retries and breaker.
    return ProbeProvider(inner=create_llm_provider(settings))


@pytest.fixture
def pipeline_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "llm_prices": {"offline": (0.001, 0.002)},
            "generation_sweep_interval_seconds": 1,
            "generation_queued_timeout_seconds": 2,
            "generation_step_timeout_seconds": 30,
        }
    )


@pytest.fixture
def worker(
    pipeline_settings: Settings, probe: ProbeProvider, database_url: str
) -> Iterator[ProbeProvider]:
    """A running worker whose model is ``probe``."""
    started = start_worker(pipeline_settings, threads=16, provider_factory=lambda s, r: probe)
    yield probe
    stop_worker(*started)


@pytest.fixture
async def api(pipeline_settings: Settings, reference_rows: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(pipeline_settings)) as http:
        yield http
