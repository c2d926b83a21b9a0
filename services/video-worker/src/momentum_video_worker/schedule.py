"""When a video's next poll or attempt is due: polls start at a quarter of the poll interval
and back off to four intervals; failed attempts back off from one interval to an hour; a busy
provider's own Retry-After wins."""

from __future__ import annotations

from dataclasses import dataclass

from momentum_video_worker.providers import TransientProviderError
from momentum_video_worker.repository import ClaimedVideo

MAX_RETRY_DELAY_SECONDS = 3600.0


@dataclass(frozen=True)
class Schedule:
    poll_interval: float

    def next_poll_delay(self, video: ClaimedVideo) -> float:
        """A quarter of the poll interval first, doubling up to four intervals."""
        delay = self.poll_interval * min(2.0 ** (video.polls - 2), 4.0)
        video.polls += 1
        return delay

    def retry_delay(self, attempts: int) -> float:
        return min(self.poll_interval * 2.0 ** (attempts - 1), MAX_RETRY_DELAY_SECONDS)

    def delay_after(self, exc: TransientProviderError) -> float:
        return exc.retry_after if exc.retry_after is not None else self.poll_interval
