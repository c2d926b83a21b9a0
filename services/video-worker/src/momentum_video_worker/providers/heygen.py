"""HeyGen, on its v3 API (the v1/v2 endpoints are retired on 2026-10-31).

- ``POST /v3/videos`` with ``{"type": "avatar", "avatar_id", "voice_id", "script", "title",
  "callback_id"}`` answers ``{"data": {"video_id", "status"}}``. An ``Idempotency-Key`` header makes
  a repeated create replay the first answer instead of rendering (and billing) a second video.
- ``GET /v3/videos/{video_id}`` answers ``{"data": {"id", "status": pending|processing|completed|
  failed, "video_url", "duration", "failure_code", "failure_message", ...}}``; ``video_url`` is a
  presigned download link.
- Every call carries ``X-Api-Key``. Errors are ``{"error": {"code", "message"}}``; 429 comes with
  ``Retry-After``.

Each call has a timeout and bounded retries with jitter on 429, 5xx and network errors, behind a
circuit breaker.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx

from momentum_domain.config import Settings
from momentum_domain.kit.resilience import CircuitBreaker, retry_after_seconds
from momentum_video_worker.providers.base import (
    ProviderStatus,
    RejectedByProvider,
    TransientProviderError,
    VideoState,
)

CHUNK_SIZE = 1024 * 1024
_STATES = {
    "pending": VideoState.PENDING,
    "waiting": VideoState.PENDING,
    "queued": VideoState.PENDING,
    "processing": VideoState.PROCESSING,
    "completed": VideoState.COMPLETED,
    "failed": VideoState.FAILED,
}


class HeyGenProvider:
    name = "heygen"

    def __init__(
        self,
        settings: Settings,
        *,
        max_attempts: int = 4,
        base_delay: float = 0.5,
        max_delay: float = 8.0,
        max_inline_wait: float = 10.0,
        timeout: float = 30.0,
    ) -> None:
        missing = [
            name
            for name in ("heygen_api_key", "heygen_avatar_id", "heygen_voice_id")
            if not getattr(settings, name)
        ]
        if missing:
            raise ValueError(f"HeyGen needs {', '.join('MOMENTUM_' + m.upper() for m in missing)}")
        self._avatar_id = settings.heygen_avatar_id
        self._voice_id = settings.heygen_voice_id
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        # A longer Retry-After is not slept through here: the worker reschedules the video.
        self._max_inline_wait = max_inline_wait
        self._breaker = CircuitBreaker("heygen", failure_threshold=5, reset_after=30.0)
        self._api = httpx.AsyncClient(
            base_url=settings.heygen_base_url,
            headers={"X-Api-Key": settings.heygen_api_key, "Accept": "application/json"},
            timeout=httpx.Timeout(timeout, connect=10.0),
        )
        # Download links are presigned URLs on HeyGen's CDN: they must not get our API key.
        self._files = httpx.AsyncClient(
            timeout=httpx.Timeout(60.0, connect=10.0), follow_redirects=True
        )

    async def submit(
        self, script: str, title: str, *, idempotency_key: str, callback_id: str
    ) -> str:
        body = {
            "type": "avatar",
            "avatar_id": self._avatar_id,
            "voice_id": self._voice_id,
            "script": script,
            "title": title[:200],
            "callback_id": callback_id,
            "aspect_ratio": "16:9",
        }
        data = await self._call(
            "POST", "/v3/videos", json=body, headers={"Idempotency-Key": idempotency_key}
        )
        video_id = data.get("video_id")
        if not isinstance(video_id, str) or not video_id:
            raise TransientProviderError("HeyGen accepted the video but returned no video_id")
        return video_id

    async def status(self, provider_video_id: str) -> ProviderStatus:
        data = await self._call("GET", f"/v3/videos/{quote(provider_video_id, safe='')}")
        # An unknown future state is treated as still rendering; polling continues.
        state = _STATES.get(str(data.get("status", "")).lower(), VideoState.PROCESSING)
        duration = data.get("duration")
        error = data.get("failure_message") or data.get("failure_code")
        return ProviderStatus(
            state,
            data.get("video_url") or None,
            float(duration) if isinstance(duration, int | float) else None,
            str(error) if error else None,
        )

    async def download(self, provider_video_id: str, video_url: str) -> AsyncIterator[bytes]:
        try:
            async with self._files.stream("GET", video_url) as response:
                if response.status_code != 200:
                    raise TransientProviderError(
                        f"Downloading HeyGen video {provider_video_id}: HTTP {response.status_code}"
                    )
                async for chunk in response.aiter_bytes(CHUNK_SIZE):
                    yield chunk
        except httpx.HTTPError as exc:
            # A dropped connection or a short body: the caller retries with a fresh link.
            raise TransientProviderError(
                f"Downloading HeyGen video {provider_video_id}: {type(exc).__name__}: {exc}"
            ) from exc

    async def release(self, provider_video_id: str) -> None:
        """Videos stay in the HeyGen library, where the team can still find them."""

    async def remove_orphans(self) -> None:
        """Nothing renders here: HeyGen keeps its renders, whoever polls them."""

    async def aclose(self) -> None:
        await self._api.aclose()
        await self._files.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        if self._breaker.is_open:
            raise TransientProviderError("HeyGen is unavailable (circuit breaker open)")
        failure = ""
        retry_after: float | None = None
        outage = False
        for attempt in range(1, self._max_attempts + 1):
            try:
                response = await self._api.request(method, path, json=json, headers=headers)
            except httpx.TransportError as exc:  # timeouts and connection errors
                failure, retry_after, outage = f"{type(exc).__name__}: {exc}", None, True
            else:
                status = response.status_code
                if status < 400:
                    self._breaker.record_success()
                    return _data(response)
                # 409: the same Idempotency-Key is still being processed; ask again shortly.
                if status not in (409, 429) and status < 500:
                    self._breaker.record_success()  # HeyGen is up; this request is wrong
                    raise RejectedByProvider(f"HeyGen {method} {path}: {_error(response)}")
                failure, outage = _error(response), status >= 500
                retry_after = retry_after_seconds(response.headers)
            delay = max(retry_after or 0.0, self._backoff(attempt))
            if attempt == self._max_attempts or delay > self._max_inline_wait:
                break
            await asyncio.sleep(delay)
        if outage:
            self._breaker.record_failure()
        raise TransientProviderError(f"HeyGen {method} {path}: {failure}", retry_after=retry_after)

    def _backoff(self, attempt: int) -> float:
        """Exponential, capped, with jitter so replicas do not retry in step."""
        ceiling = min(self._base_delay * 2.0 ** (attempt - 1), self._max_delay)
        return ceiling * random.uniform(0.5, 1.5)


def _data(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError as exc:
        raise TransientProviderError(
            f"HeyGen answered {response.status_code} without JSON"
        ) from exc
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        raise TransientProviderError("HeyGen's answer has no 'data' object")
    return data


def _error(response: httpx.Response) -> str:
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if isinstance(error, dict) and (error.get("code") or error.get("message")):
        return f"HTTP {response.status_code} {error.get('code', '')}: {error.get('message', '')}"
    return f"HTTP {response.status_code}"
