"""The embedded video provider: renders the MP4 on this machine (see ``rendering``), no outside
service. Like HeyGen it completes asynchronously: ``submit`` starts a render in a thread and
``status`` reports on it, and the worker downloads the result as a file stream."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from momentum_video_worker.narration import EspeakNarrator, Narrator
from momentum_video_worker.providers.base import (
    ProviderStatus,
    RejectedByProvider,
    VideoState,
)
from momentum_video_worker.rendering import probe_duration, render_video

CHUNK_SIZE = 1024 * 1024
logger = logging.getLogger(__name__)


class LocalRenderProvider:
    name = "local"

    def __init__(
        self, work_dir: Path, *, words_per_minute: int, narrator: Narrator | None = None
    ) -> None:
        self._work_dir = work_dir
        self._words_per_minute = words_per_minute
        self._narrator = narrator or EspeakNarrator()
        self._renders: dict[str, asyncio.Task[float]] = {}
        # Checked once, at worker start: a silent video is a setup problem, not a per-video one.
        self.voice = self._narrator.voice
        if self.voice is None:
            logger.warning(
                "NO VOICE: videos will be SILENT. Neither the espeak-ng binary nor the "
                "libespeak-ng of the espeakng-loader package loads here; install espeak-ng or set "
                "MOMENTUM_VIDEO_NARRATION=polly."
            )

    async def submit(
        self, script: str, title: str, *, idempotency_key: str, callback_id: str
    ) -> str:
        # The id derives from the key, so a repeated submission finds the same render.
        video_id = "local-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
        if video_id not in self._renders and not self._output(video_id).exists():
            self._renders[video_id] = asyncio.create_task(self._render(video_id, title, script))
        return video_id

    async def status(self, provider_video_id: str) -> ProviderStatus:
        output = self._output(provider_video_id)
        render = self._renders.get(provider_video_id)
        if render is not None and not render.done():
            return ProviderStatus(VideoState.PROCESSING, None, None, None)
        if render is not None and (render.cancelled() or render.exception() is not None):
            reason = "cancelled" if render.cancelled() else str(render.exception())
            return ProviderStatus(VideoState.FAILED, None, None, f"Local render failed: {reason}")
        if output.exists():
            duration = (
                render.result() if render else await asyncio.to_thread(probe_duration, output)
            )
            return ProviderStatus(VideoState.COMPLETED, output.as_uri(), duration, None)
        # Renders live in the process that started them; that process is gone.
        return ProviderStatus(
            VideoState.FAILED, None, None, "Local render lost: its worker stopped before it ended"
        )

    async def download(self, provider_video_id: str, video_url: str) -> AsyncIterator[bytes]:
        path = self._output(provider_video_id)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise RejectedByProvider(f"No rendered video {provider_video_id}") from None
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK_SIZE):
                yield chunk
        finally:
            handle.close()

    async def release(self, provider_video_id: str) -> None:
        """The video is in object storage now: drop the render."""
        self._renders.pop(provider_video_id, None)
        await asyncio.to_thread(self._output(provider_video_id).unlink, missing_ok=True)

    async def aclose(self) -> None:
        for render in self._renders.values():
            render.cancel()
        await asyncio.gather(*self._renders.values(), return_exceptions=True)

    def _output(self, video_id: str) -> Path:
        return self._work_dir / f"{video_id}.mp4"

    async def _render(self, video_id: str, title: str, script: str) -> float:
        scratch = self._work_dir / f"{video_id}.work"
        try:
            rendered = await asyncio.to_thread(
                render_video,
                title,
                script,
                self._output(video_id),
                words_per_minute=self._words_per_minute,
                work_dir=scratch,
                narrator=self._narrator,
            )
        finally:
            await asyncio.to_thread(shutil.rmtree, scratch, ignore_errors=True)
        return rendered.duration_seconds
