"""The embedded video provider: renders the MP4 on this machine (see ``rendering``), no outside
service. Like HeyGen it completes asynchronously: ``submit`` starts a render in a thread and
``status`` reports on it, and the worker downloads the result as a file stream.

Each render works in a folder of its own (``<id>.<run>.work``, the partial MP4 inside) next to a
lock file (``<id>.<run>.lock``) it holds an exclusive ``flock`` on while it runs. The kernel drops
the lock when the process dies, even by SIGKILL, so anyone may remove a folder whose lock is free:
a worker that takes a dead worker's video over does, and every worker at start, without risk to
the renders of other live workers sharing the folder."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from momentum_video_worker.narration import EspeakNarrator, Narrator
from momentum_video_worker.providers.base import (
    ProviderStatus,
    RejectedByProvider,
    RenderLost,
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
        # Renders live in the process that started them, and that process is gone: clear what
        # it left and let the worker render again.
        await self.remove_orphans()
        raise RenderLost(f"the local render {provider_video_id} stopped with its worker")

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

    async def remove_orphans(self) -> None:
        await asyncio.to_thread(remove_orphans, self._work_dir)

    async def aclose(self) -> None:
        for render in self._renders.values():
            render.cancel()
        await asyncio.gather(*self._renders.values(), return_exceptions=True)

    def _output(self, video_id: str) -> Path:
        return self._work_dir / f"{video_id}.mp4"

    async def _render(self, video_id: str, title: str, script: str) -> float:
        run = f"{video_id}.{uuid.uuid4().hex[:8]}"
        lock = await asyncio.to_thread(_hold_lock, self._work_dir / f"{run}{LOCK_SUFFIX}")
        scratch = self._work_dir / f"{run}{WORK_SUFFIX}"
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
            (self._work_dir / f"{run}{LOCK_SUFFIX}").unlink(missing_ok=True)
            os.close(lock)
        return rendered.duration_seconds


WORK_SUFFIX = ".work"
LOCK_SUFFIX = ".lock"


def _hold_lock(path: Path) -> int:
    """Create ``path`` already locked: it is locked under a temporary name, then renamed, so a
    sweeper never finds it unlocked while its render is alive."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".new")
    descriptor = os.open(temporary, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    os.replace(temporary, path)
    return descriptor


def remove_orphans(work_dir: Path) -> None:
    """Delete the scratch folders (partial MP4 inside) of renders whose process died: their lock
    is free, or they have none (a lock file is in place before its folder is made)."""
    if not work_dir.is_dir():
        return
    for lock in work_dir.glob(f"*{LOCK_SUFFIX}"):
        try:
            descriptor = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            continue  # its render just ended, or another sweeper removed it
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live render
            scratch = lock.with_suffix(WORK_SUFFIX)
            shutil.rmtree(scratch, ignore_errors=True)
            lock.unlink(missing_ok=True)
            logger.info("removed the partial render %s of a stopped worker", scratch.name)
        finally:
            os.close(descriptor)
    for scratch in work_dir.glob(f"*{WORK_SUFFIX}"):
        if not scratch.with_suffix(LOCK_SUFFIX).exists():
            shutil.rmtree(scratch, ignore_errors=True)
    for stale in (*work_dir.glob("*.partial.mp4"), *work_dir.glob(f"*{LOCK_SUFFIX}.new")):
        # Older renders kept the partial MP4 beside the output; a lock file that was never
        # renamed belongs to a process that died creating it... or is being created right now.
        if stale.suffix == ".mp4" or _older_than(stale, 60):
            stale.unlink(missing_ok=True)


def _older_than(path: Path, seconds: float) -> bool:
    with contextlib.suppress(FileNotFoundError):
        return path.stat().st_mtime < time.time() - seconds
    return False
