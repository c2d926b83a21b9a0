"""A real Dramatiq worker on the real Redis broker, in this process, with a model provider the
test controls (the offline provider, wrapped to misbehave or to record concurrency)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from momentum_api.app import create_app
from momentum_domain.config import Settings
from momentum_generator.llm import (
    LlmProvider,
    LlmRequest,
    LlmResponse,
    create_llm_provider,
)
from momentum_generator.worker import start_worker, stop_worker
from tests.api.conftest import (  # noqa: F401 - fixtures
    Account,
    admin_account,
    app,
    client,
    learner,
    make_account,
    make_course,
    serve,
)


@dataclass
class ProbeProvider:
    """Wraps the offline provider: counts calls, records peak concurrency per job and overall,
    and can be told to fail or answer badly."""

    inner: LlmProvider
    name: str = "offline"
    latency: dict[str, float] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (purpose, first prompt line)
    requests: list[LlmRequest] = field(default_factory=list)
    in_flight: int = 0
    peak: int = 0
    peak_by_topic: dict[str, int] = field(default_factory=dict)
    in_flight_by_topic: dict[str, int] = field(default_factory=dict)
    # purpose -> callable(request) returning a replacement answer text, or raising.
    misbehave: dict[str, Callable[[LlmRequest], str | None]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def complete(self, request: LlmRequest) -> LlmResponse:
        topic = _line(request.prompt, "COURSE_TOPIC") or _line(request.prompt, "TOPIC") or "?"
        with self.lock:
            self.calls.append((request.purpose, request.prompt.splitlines()[0]))
            self.requests.append(request)
            if request.purpose in ("lesson", "script"):
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
                now = self.in_flight_by_topic.get(topic, 0) + 1
                self.in_flight_by_topic[topic] = now
                self.peak_by_topic[topic] = max(self.peak_by_topic.get(topic, 0), now)
        try:
            await asyncio.sleep(self.latency.get(request.purpose, 0))
            response = await self.inner.complete(request)
            if request.purpose in self.misbehave:
                replacement = self.misbehave[request.purpose](request)
                if replacement is not None:
                    response = LlmResponse(
                        text=replacement,
                        input_tokens=response.input_tokens,
                        output_tokens=response.output_tokens,
                        model=response.model,
                        provider=response.provider,
                        latency_ms=response.latency_ms,
                    )
            return response
        finally:
            if request.purpose in ("lesson", "script"):
                with self.lock:
                    self.in_flight -= 1
                    self.in_flight_by_topic[topic] -= 1

    async def generate_image(self, prompt: str) -> bytes | None:
        return None

    def count(self, purpose: str) -> int:
        return sum(1 for p, _ in self.calls if p == purpose)


def _line(prompt: str, label: str) -> str | None:
    for line in prompt.splitlines():
        if line.startswith(f"{label}: "):
            return line.removeprefix(f"{label}: ")
    return None


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


async def wait_for_job(
    http: httpx.AsyncClient, account: Account, job_id: str, *, within: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        job = (await http.get(f"/admin/generation-jobs/{job_id}", headers=account.headers)).json()
        if job["status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {within}s: {job['step_counts']}")


async def queue(
    http: httpx.AsyncClient, account: Account, topic: str, days: int = 7, **extra: Any
) -> dict[str, Any]:
    headers = {**account.headers, **extra.pop("headers", {})}
    response = await http.post(
        "/admin/generation-jobs",
        json={"topic": topic, "duration_days": days, **extra},
        headers=headers,
    )
    assert response.status_code == 202, response.text
    return response.json()
