"""Video providers, chosen by ``MOMENTUM_VIDEO_PROVIDER``: the local renderer (embedded default)
or HeyGen."""

from __future__ import annotations

from momentum_domain.config import Settings
from momentum_video_worker.narration import EspeakNarrator, Narrator, PollyNarrator
from momentum_video_worker.providers.base import (
    ProviderError,
    ProviderStatus,
    RejectedByProvider,
    RenderLost,
    TransientProviderError,
    VideoProvider,
    VideoState,
)
from momentum_video_worker.providers.heygen import HeyGenProvider
from momentum_video_worker.providers.local import LocalRenderProvider


def create_provider(settings: Settings) -> VideoProvider:
    if settings.video_provider == "heygen":
        return HeyGenProvider(settings)
    narrator: Narrator = EspeakNarrator()
    if settings.video_narration == "polly":
        import boto3

        narrator = PollyNarrator(
            boto3.client("polly", region_name=settings.aws_region), settings.polly_voice_id
        )
    return LocalRenderProvider(
        settings.data_dir / "video-renders",
        words_per_minute=settings.generation_script_words_per_minute,
        narrator=narrator,
    )


__all__ = [
    "HeyGenProvider",
    "LocalRenderProvider",
    "ProviderError",
    "ProviderStatus",
    "RejectedByProvider",
    "RenderLost",
    "TransientProviderError",
    "VideoProvider",
    "VideoState",
    "create_provider",
]
