"""Video providers, chosen by ``MOMENTUM_VIDEO_PROVIDER``: the local renderer (embedded default)
or HeyGen."""

from __future__ import annotations

from momentum_domain.config import Settings
from momentum_video_worker.providers.base import (
    ProviderError,
    ProviderStatus,
    RejectedByProvider,
    TransientProviderError,
    VideoProvider,
    VideoState,
)
from momentum_video_worker.providers.heygen import HeyGenProvider
from momentum_video_worker.providers.local import LocalRenderProvider


def create_provider(settings: Settings) -> VideoProvider:
    if settings.video_provider == "heygen":
        return HeyGenProvider(settings)
    return LocalRenderProvider(
        settings.data_dir / "video-renders",
        words_per_minute=settings.generation_script_words_per_minute,
    )


__all__ = [
    "HeyGenProvider",
    "LocalRenderProvider",
    "ProviderError",
    "ProviderStatus",
    "RejectedByProvider",
    "TransientProviderError",
    "VideoProvider",
    "VideoState",
    "create_provider",
]
