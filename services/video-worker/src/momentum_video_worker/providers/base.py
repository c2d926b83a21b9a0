"""The video provider interface: submit a narration script, read the video's status, and stream
the finished MP4. HeyGen and the local renderer implement it; the worker only sees this."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from typing import NamedTuple, Protocol


class VideoState(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class ProviderStatus(NamedTuple):
    state: VideoState
    video_url: str | None
    duration_seconds: float | None
    error: str | None


class ProviderError(Exception):
    """The provider could not do what was asked."""


class TransientProviderError(ProviderError):
    """Worth trying again later (rate limited, unavailable, timed out, breaker open); it does not
    count against the video's attempts. ``retry_after`` is the provider's own hint, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RejectedByProvider(ProviderError):
    """The provider refused this video (invalid input, unknown id): one failed attempt."""


class RenderLost(ProviderError):
    """The render died with the process that ran it (a local render after a crash): submitting
    again with the same ``idempotency_key`` starts it over, as the same attempt. HeyGen never
    raises it: its renders survive us, so a taken-over video is only ever polled there."""


class VideoProvider(Protocol):
    name: str

    async def submit(
        self, script: str, title: str, *, idempotency_key: str, callback_id: str
    ) -> str:
        """Start rendering and return the provider's video id. Submitting again with the same
        ``idempotency_key`` must return the same id instead of starting a second video."""
        ...

    async def status(self, provider_video_id: str) -> ProviderStatus: ...

    def download(self, provider_video_id: str, video_url: str) -> AsyncIterator[bytes]:
        """The finished MP4 as a stream of chunks."""
        ...

    async def release(self, provider_video_id: str) -> None:
        """The video is safely in our storage; the provider may drop its copy."""
        ...

    async def remove_orphans(self) -> None:
        """Delete partial renders on this machine whose process died (safe at any time)."""
        ...

    async def aclose(self) -> None: ...
