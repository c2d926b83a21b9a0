"""The HeyGen client on its own, against the fake: errors it must not retry, the circuit breaker,
and Retry-After as an HTTP date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from momentum_dev.fakes.heygen import FakeHeyGen, Fault
from momentum_domain.config import Settings
from momentum_video_worker.providers import (
    HeyGenProvider,
    RejectedByProvider,
    TransientProviderError,
)


async def test_a_wrong_api_key_is_rejected_not_retried(
    fake_heygen: FakeHeyGen, video_settings: Settings
) -> None:
    provider = HeyGenProvider(video_settings.model_copy(update={"heygen_api_key": "wrong"}))
    try:
        with pytest.raises(RejectedByProvider, match="401 unauthorized"):
            await provider.status("hg1")
    finally:
        await provider.aclose()

    assert len(fake_heygen.requests) == 1


async def test_the_breaker_opens_after_repeated_outages(
    fake_heygen: FakeHeyGen, video_settings: Settings
) -> None:
    fake_heygen.status_faults.extend(Fault(503) for _ in range(10))
    provider = HeyGenProvider(video_settings, max_attempts=1)
    try:
        for _ in range(5):
            with pytest.raises(TransientProviderError, match="HTTP 503"):
                await provider.status("hg1")
        with pytest.raises(TransientProviderError, match="circuit breaker open"):
            await provider.status("hg1")
    finally:
        await provider.aclose()

    assert len(fake_heygen.requests) == 5  # the sixth call never left the process


async def test_retry_after_as_an_http_date_is_honoured(
    fake_heygen: FakeHeyGen, video_settings: Settings
) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    fake_heygen.status_faults.append(Fault(429, {"Retry-After": later}, "rate_limit_exceeded"))
    provider = HeyGenProvider(video_settings)
    try:
        with pytest.raises(TransientProviderError) as raised:
            await provider.status("hg1")
    finally:
        await provider.aclose()

    # Too long to wait inline: the worker is told when to come back instead.
    assert raised.value.retry_after is not None
    assert 100 < raised.value.retry_after <= 120
    assert len(fake_heygen.requests) == 1
